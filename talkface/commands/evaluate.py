"""Evaluate trained checkpoints against the trivial baselines on a prepared test split (one table)."""

from __future__ import annotations

import argparse

from talkface.errors import TalkfaceError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise TalkfaceError("talkface evaluate is not written yet")
