"""Fail when the active environment differs from requirements/lock.txt (a moved registry, a stray upgrade)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name


def main() -> int:
    lock = Path(__file__).with_name("lock.txt")
    wanted = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            wanted[canonicalize_name(name)] = version
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = [
        f"{name} {installed.get(name, 'missing')} (lock: {version})"
        for name, version in sorted(wanted.items())
        if installed.get(name) != version
    ]
    if wrong:
        print(f"installed packages differ from {lock}: " + "; ".join(wrong), file=sys.stderr)
        return 1
    print(f"installed packages match {lock.name} ({len(wanted)} pinned)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
