"""Build the built-in sample dataset in LRW layout (placeholder until the sample builder lands)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (LRW layout)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
