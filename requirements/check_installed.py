"""Fail when the active environment differs from requirements/lock.txt (a moved registry, a stray upgrade).

python requirements/check_installed.py           # every installed locked package at its locked version
python requirements/check_installed.py --strict  # and every locked package installed (the dev set-up; CI)
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name


def locked_versions(lock: Path) -> dict[str, str]:
    wanted = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            wanted[canonicalize_name(name)] = version
    return wanted


def main(argv: list[str]) -> int:
    lock = Path(__file__).with_name("lock.txt")
    wanted = locked_versions(lock)
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = [
        f"{name} {installed[name]} (lock: {version})"
        for name, version in sorted(wanted.items())
        if name in installed and installed[name] != version
    ]
    missing = sorted(name for name in wanted if name not in installed)
    if wrong or ("--strict" in argv and missing):
        problems = wrong + ([f"missing: {', '.join(missing)}"] if "--strict" in argv and missing else [])
        print(f"installed packages differ from {lock}: " + "; ".join(problems), file=sys.stderr)
        return 1
    note = f"; not installed: {', '.join(missing)}" if missing else ""
    print(
        f"installed packages match {lock.name} ({len(wanted) - len(missing)} of {len(wanted)} locked packages installed{note})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
