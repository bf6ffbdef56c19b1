"""Find the clips of a raw dataset: LRW tree, GRID clips, or any folder of videos.

A `Source` is one video file to process; it may yield several samples (windows) later.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass, field, replace
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
    identity: str | None = None  # the person (from --identities), when known
    audio_offset: int = 0  # frames by which the recording's sound comes late (from --av-offsets)


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
    identities: IdentityTable | None = None,
) -> list[Source]:
    """The clips under `root`; nothing inside `exclude` (an output folder placed inside the
    source) is ever taken, so a re-run sees the same clips as the first run. With `identities`,
    every clip goes to its identity's split (see IdentityTable), not to the layout's own."""
    if not root.is_dir():
        raise TalkfaceError(f"{root}: source folder not found")
    if layout == "auto":
        layout = detect_layout(root, exclude)
    finder = {"lrw": _lrw_sources, "grid": _grid_sources, "folder": _folder_sources}.get(layout)
    if finder is None:
        raise TalkfaceError(f"unknown layout {layout!r}; use lrw, grid, folder or auto")
    found = finder(root, split_ratios, exclude)
    if identities is not None:
        found = identities.assign(found, root)
    sources = [s for s in found if s.split in splits]
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


IDENTITY_COLUMNS = ("file", "identity", "split")


@dataclass(frozen=True)
class IdentityRow:
    pattern: str  # a path or glob (`grid_s1/s1/*.mp4`), relative to the CSV's folder or to --src
    identity: str
    split: str


@dataclass(frozen=True)
class IdentityTable:
    """`--identities FILE.csv`: who is in every clip, and the split of each identity.

    Columns `file,identity,split` (more columns are ignored). `file` is a path or a glob, with
    `/` separators, relative to the CSV's own folder (so one CSV beside several source folders
    serves them all: `speakers/obama.mp4` when --src is `corpus/speakers`) or relative to --src;
    an exact path wins over a glob (fnmatch: `*` also crosses `/`), and of several globs the
    first row that matches. Every clip of an identity goes to that identity's split, so no
    person is in two splits; one identity given two splits is an error. A clip the table does
    not name is an error that names it (a clip quietly split by its name could put a held-out
    person in training).
    """

    path: Path
    rows: tuple[IdentityRow, ...]

    @classmethod
    def read(cls, path: Path) -> IdentityTable:
        path = Path(path)
        where = f"--identities {path}"
        rows, splits = [], {}
        for line, values in read_table(path, where, IDENTITY_COLUMNS, "an identity table"):
            if not all(values.values()):
                raise TalkfaceError(f"{where}, line {line}: file, identity and split must all be given")
            if values["split"] not in LRW_SPLITS:
                raise TalkfaceError(
                    f"{where}, line {line}: split {values['split']!r} is not one of {', '.join(LRW_SPLITS)}"
                )
            first = splits.setdefault(values["identity"], values["split"])
            if first != values["split"]:
                raise TalkfaceError(
                    f"{where}, line {line}: identity {values['identity']!r} is in {first} and in "
                    f"{values['split']}; an identity belongs to one split"
                )
            pattern = values["file"].replace("\\", "/")
            rows.append(
                IdentityRow(pattern[2:] if pattern.startswith("./") else pattern, values["identity"], values["split"])
            )
        if not rows:
            raise TalkfaceError(f"{where}: no rows (expected lines of file,identity,split)")
        return cls(path, tuple(rows))

    def lookup(self, keys: list[str]) -> IdentityRow | None:
        index = first_match([row.pattern for row in self.rows], keys)
        return None if index is None else self.rows[index]

    def assign(self, sources: list[Source], root: Path) -> list[Source]:
        """Each source with the identity and split of its row; an error naming the clips without one."""
        assigned, unnamed = [], []
        for source in sources:
            keys = source_keys(source, root, self.path)
            row = self.lookup(keys)
            if row is None:
                unnamed.append(keys[0])
                continue
            assigned.append(replace(source, split=row.split, identity=row.identity))
        if unnamed:
            shown = ", ".join(unnamed[:5]) + (f" and {len(unnamed) - 5} more" if len(unnamed) > 5 else "")
            raise TalkfaceError(
                f"--identities {self.path} names no identity for {len(unnamed)} clip(s) of {root}: {shown}; "
                "add a row (file,identity,split) for each"
            )
        return assigned


def source_keys(source: Source, root: Path, table: Path) -> list[str]:
    """The names a CSV row may give a clip by: its path relative to --src, and relative to the
    CSV's own folder (as written: abspath keeps symbolic links; and with links resolved)."""
    keys = [source.path.relative_to(root).as_posix()]
    bases = (Path(os.path.abspath(table)).parent, Path(table).resolve().parent)
    for base, path in zip(bases, (Path(os.path.abspath(source.path)), source.path.resolve()), strict=True):
        if path.is_relative_to(base):
            keys.append(path.relative_to(base).as_posix())
    return keys


def read_table(path: Path, where: str, columns: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    """The non-blank rows of a CSV table as (line number, {column: stripped value}); one-line
    TalkfaceErrors for a missing file, a missing column or an unreadable file."""
    if not path.is_file():
        raise TalkfaceError(f"{where}: " + ("is a folder; give the CSV file" if path.is_dir() else "no such file"))
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [c for c in columns if c not in header]
            if missing:
                raise TalkfaceError(
                    f"{where}: not {what} (no {', '.join(missing)} column; the first line must "
                    f"name the columns {','.join(columns)})"
                )
            reader.fieldnames = header
            records = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise TalkfaceError(f"{where}: not a readable CSV file ({error})") from None
    rows = []
    for line, record in enumerate(records, start=2):
        values = {c: (record.get(c) or "").strip() for c in columns}
        if any(values.values()):
            rows.append((line, values))
    return rows


def first_match(patterns: list[str], keys: list[str]) -> int | None:
    """Index of the first pattern that is one of `keys`, else of the first glob matching one
    (fnmatch: `*` also crosses `/`); None when none does."""
    for index, pattern in enumerate(patterns):
        if pattern in keys:
            return index
    for index, pattern in enumerate(patterns):
        if any(fnmatch.fnmatchcase(key, pattern) for key in keys):
            return index
    return None
