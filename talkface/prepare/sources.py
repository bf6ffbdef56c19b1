"""Find the clips of a raw dataset: LRW tree, GRID clips, or any folder of videos.

A `Source` is one video file to process; it may yield several samples (windows) later.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from talkface.errors import TalkfaceError
from talkface.media.formats import VIDEO_SUFFIXES

LRW_SPLITS = ("train", "val", "test")

# GRID's grammar: command colour preposition letter digit adverb, one letter each in the file name.
GRID_COMMANDS = {"b": "bin", "l": "lay", "p": "place", "s": "set"}
GRID_COLOURS = {"b": "blue", "g": "green", "r": "red", "w": "white"}
GRID_PREPOSITIONS = {"a": "at", "b": "by", "i": "in", "w": "with"}
GRID_DIGITS = {
    "z": "zero",
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
}
GRID_ADVERBS = {"a": "again", "n": "now", "p": "please", "s": "soon"}
GRID_LETTERS = [c for c in "abcdefghijklmnopqrstuvxyz"]  # no 'w' in GRID
GRID_VOCABULARY = sorted(
    {
        w.upper()
        for table in (GRID_COMMANDS, GRID_COLOURS, GRID_PREPOSITIONS, GRID_DIGITS, GRID_ADVERBS)
        for w in table.values()
    }
    | {c.upper() for c in GRID_LETTERS}
)


@dataclass(frozen=True)
class Source:
    id: str  # stable, unique, path-like: "ABOUT/train/ABOUT_00001"
    path: Path
    split: str
    word: str | None = None  # LRW: the clip's word
    word_seconds: float | None = None  # LRW: the word's duration (centred in the clip)
    words: tuple[str, ...] = ()  # GRID: the sentence
    word_spans: tuple[tuple[str, float, float], ...] = field(default=())  # (word, start s, end s)


def detect_layout(root: Path, exclude: Path | None = None) -> str:
    """'lrw' when WORD/{train,val,test}/*.mp4 exists, 'grid' for GRID-named .mpg, else 'folder'.

    `exclude` (the output folder, when it lies inside the source) is never looked at.
    """
    for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and not _excluded(p, root, exclude))[:50]:
        if any((word_dir / split).is_dir() for split in LRW_SPLITS):
            return "lrw"
    videos = list(_videos(root, exclude))
    if videos and all(p.suffix.lower() == ".mpg" and parse_grid_name(p.stem) for p in videos):
        return "grid"
    return "folder"


def find_sources(
    root: Path,
    layout: str,
    splits: tuple[str, ...],
    split_ratios: tuple[float, float, float],
    exclude: Path | None = None,
) -> list[Source]:
    """The clips under `root`; nothing inside `exclude` (an output folder placed inside the
    source) is ever taken, so a re-run sees the same clips as the first run."""
    if not root.is_dir():
        raise TalkfaceError(f"{root}: source folder not found")
    if layout == "auto":
        layout = detect_layout(root, exclude)
    finder = {"lrw": _lrw_sources, "grid": _grid_sources, "folder": _folder_sources}.get(layout)
    if finder is None:
        raise TalkfaceError(f"unknown layout {layout!r}; use lrw, grid, folder or auto")
    sources = [s for s in finder(root, split_ratios, exclude) if s.split in splits]
    if not sources:
        raise TalkfaceError(f"{root}: no {layout} clips found for splits {', '.join(splits)}")
    return sorted(sources, key=lambda s: s.id)


def _excluded(path: Path, root: Path, exclude: Path | None) -> bool:
    """Whether `path` (found below `root`) lies in `exclude`; lexical, after resolving the two folders."""
    if exclude is None:
        return False
    inside = _relative_parts(root, exclude)
    return inside is not None and path.relative_to(root).parts[: len(inside)] == inside


@lru_cache(maxsize=16)
def _relative_parts(root: Path, exclude: Path) -> tuple[str, ...] | None:
    root, exclude = root.resolve(), exclude.resolve()
    return exclude.relative_to(root).parts if exclude.is_relative_to(root) and exclude != root else None


def _files(root: Path, exclude: Path | None = None) -> list[Path]:
    """Every file below `root`, sorted, without descending into `exclude`."""
    found = []
    skip = exclude.resolve() if exclude is not None else None
    for folder, dirs, names in os.walk(root):
        if skip is not None:
            dirs[:] = [d for d in dirs if Path(folder, d).resolve() != skip]
        found.extend(Path(folder, name) for name in names)
    return sorted(found)


def _videos(root: Path, exclude: Path | None = None):
    return (p for p in _files(root, exclude) if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def _lrw_sources(root: Path, _ratios, exclude: Path | None = None) -> list[Source]:
    sources = []
    for path in root.glob("*/*/*.mp4"):
        word, split = path.parent.parent.name, path.parent.name
        if split not in LRW_SPLITS or _excluded(path, root, exclude):
            continue
        sources.append(
            Source(
                id=f"{word}/{split}/{path.stem}",
                path=path,
                split=split,
                word=word,
                word_seconds=read_lrw_duration(path.with_suffix(".txt")),
            )
        )
    return sources


def read_lrw_duration(txt: Path) -> float | None:
    """The `Duration: 0.53 seconds` line of an LRW clip's .txt, or None when absent."""
    if not txt.is_file():
        return None
    match = re.search(r"^Duration:\s*([0-9.]+)", txt.read_text(errors="replace"), re.MULTILINE)
    return float(match.group(1)) if match else None


def parse_grid_name(stem: str) -> tuple[str, ...] | None:
    """'bbaf2n' → ('BIN', 'BLUE', 'AT', 'F', 'TWO', 'NOW'); None when it is no GRID name."""
    stem = stem.lower()
    if len(stem) != 6:
        return None
    tables = (GRID_COMMANDS, GRID_COLOURS, GRID_PREPOSITIONS, None, GRID_DIGITS, GRID_ADVERBS)
    words = []
    for char, table in zip(stem, tables, strict=True):
        if table is None:
            if char not in GRID_LETTERS:
                return None
            words.append(char)
        elif char in table:
            words.append(table[char])
        else:
            return None
    return tuple(w.upper() for w in words)


def read_grid_align(path: Path) -> tuple[tuple[str, float, float], ...]:
    """GRID .align: 'start end word' in units of 1/25000 s; silences ('sil', 'sp') dropped."""
    spans = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] not in ("sil", "sp"):
            spans.append((parts[2].upper(), int(parts[0]) / 25000.0, int(parts[1]) / 25000.0))
    return tuple(spans)


def _grid_sources(root: Path, ratios, exclude: Path | None = None) -> list[Source]:
    aligns = {p.stem: p for p in _files(root, exclude) if p.suffix == ".align"}
    sources = []
    for path in _videos(root, exclude):
        words = parse_grid_name(path.stem)
        if words is None:
            continue
        rel = path.relative_to(root).with_suffix("")
        spans = read_grid_align(aligns[path.stem]) if path.stem in aligns else ()
        sources.append(
            Source(id=str(rel), path=path, split=hash_split(str(rel), ratios), words=words, word_spans=spans)
        )
    return sources


def _folder_sources(root: Path, ratios, exclude: Path | None = None) -> list[Source]:
    sources = []
    for path in _videos(root, exclude):
        rel = str(path.relative_to(root))
        sources.append(Source(id=rel, path=path, split=hash_split(rel, ratios)))
    return sources


def hash_split(key: str, ratios: tuple[float, float, float]) -> str:
    """A deterministic split from the clip's name, so reruns and other machines agree."""
    value = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    train, val, _ = ratios
    return "train" if value < train else "val" if value < train + val else "test"
