#!/usr/bin/env bash
# Regenerate requirements/lock.txt: resolve pyproject.toml's dependencies (with the dev extra)
# into a throw-away virtual environment and record every installed version exactly.
#   bash requirements/regenerate.sh
# Then run the whole test suite (.ci/run) before committing the new lock.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(mktemp -d)/venv"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet ".[dev]"
{
    echo "# Every package talkface installs, at the exact version CI tested (Linux x86_64, Python 3.11)."
    echo "# Used as constraints: pip install -e \".[dev]\" -c requirements/lock.txt"
    echo "# Regenerate with: bash requirements/regenerate.sh   (then run .ci/run before committing)"
    "$VENV/bin/python" -m pip freeze --exclude talkface --all | grep -v -E '^(pip|setuptools|wheel)=='
} > requirements/lock.txt.new
mv requirements/lock.txt.new requirements/lock.txt
rm -rf "$(dirname "$VENV")"
echo "wrote requirements/lock.txt ($(grep -vc '^#' requirements/lock.txt) packages)"
