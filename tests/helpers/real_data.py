"""Where the repository and the real media set are, and markers for tests that need the media."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The real media set sits beside the repository (../shared/data/real); TALKFACE_REAL_DATA overrides.
REAL_DATA = Path(os.environ.get("TALKFACE_REAL_DATA", REPO.parent / "shared" / "data" / "real"))
LRW_WORDS = REAL_DATA.parent / "lrw_words.txt"


def real_files(kind: str) -> list[Path]:
    """Files of `videos`, `faces` or `audio`, for parametrising; empty when absent."""
    folder = REAL_DATA / kind
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".md") if folder.is_dir() else []


def needs_real_data():
    return pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real media not present at {REAL_DATA}")


# The real talking-face corpus (grid_s1/, speakers/, silent/) beside the real media set.
CORPUS = Path(os.environ.get("TALKFACE_CORPUS", REAL_DATA.parent / "corpus"))


def needs_corpus():
    return pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real corpus not present at {CORPUS}")
