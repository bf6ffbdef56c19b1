"""Run `talkface fit/test` as child processes and read back what they measured.

Commands that chain trainings (`ablate`, `demo`) run each one as its own process, exactly as a
user would from the shell: every run starts clean (no state left over from the previous one).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from talkface.errors import TalkfaceError


def run_talkface(args: list[str], quiet: bool = True) -> None:
    """`talkface ARGS` in a child process; its last stderr line becomes the error when it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "talkface.cli", *args],
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TalkfaceError(f"`talkface {' '.join(args[:3])} ...` failed: {last}")


def read_test_metrics(folder: Path) -> dict[str, float]:
    """The test/* values a CSVLogger wrote under `folder`."""
    values = {}
    for path in folder.rglob("metrics.csv"):
        for row in csv.DictReader(path.open()):
            values.update({k: float(v) for k, v in row.items() if k.startswith("test/") and v})
    if not values:
        raise TalkfaceError(f"no test metrics found under {folder}")
    return values


def newest(root: Path, pattern: str) -> Path:
    """The most recently written file matching `pattern` under `root`."""
    found = sorted(root.rglob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise TalkfaceError(f"no {pattern} under {root}")
    return found[-1]
