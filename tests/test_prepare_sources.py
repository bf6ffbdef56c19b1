"""Finding clips and their labels in LRW, GRID and plain folder layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkface.errors import TalkfaceError
from talkface.prepare.sources import (
    GRID_VOCABULARY,
    detect_layout,
    find_sources,
    hash_split,
    parse_grid_name,
    read_grid_align,
    read_lrw_duration,
)

RATIOS = (0.8, 0.1, 0.1)


def touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_grid_names_spell_the_sentence():
    assert parse_grid_name("bbaf2n") == ("BIN", "BLUE", "AT", "F", "TWO", "NOW")
    assert parse_grid_name("swiz3n") == ("SET", "WHITE", "IN", "Z", "THREE", "NOW")
    assert parse_grid_name("lbax4n") == ("LAY", "BLUE", "AT", "X", "FOUR", "NOW")
    assert parse_grid_name("hello1") is None and parse_grid_name("bbaw2n") is None  # no W letter in GRID
    assert len(GRID_VOCABULARY) == 51 and "BIN" in GRID_VOCABULARY and "Z" in GRID_VOCABULARY


def test_grid_align_files_give_word_spans_without_silence(tmp_path):
    align = touch(
        tmp_path / "bbaf2n.align", "0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 at\n74500 74501 sp\n"
    )
    assert read_grid_align(align) == (("BIN", 0.95, 1.18), ("BLUE", 1.18, 1.36), ("AT", 1.36, 1.42))


def test_lrw_duration_is_read_from_the_txt(tmp_path):
    txt = touch(tmp_path / "ABOUT_00001.txt", "Text:  ABOUT\nConf:  0.9\n\nWORD  ABOUT\nDuration: 0.53 seconds\n")
    assert read_lrw_duration(txt) == pytest.approx(0.53)
    assert read_lrw_duration(tmp_path / "missing.txt") is None


def test_layouts_are_detected_and_lrw_splits_come_from_folders(tmp_path):
    lrw = tmp_path / "lrw"
    for split in ("train", "val", "test"):
        touch(lrw / "ABOUT" / split / "ABOUT_00001.mp4")
        touch(lrw / "ABOUT" / split / "ABOUT_00001.txt", "Duration: 0.40 seconds\n")
    assert detect_layout(lrw) == "lrw"
    sources = find_sources(lrw, "auto", ("train", "test"), RATIOS)
    assert [(s.id, s.split, s.word, s.word_seconds) for s in sources] == [
        ("ABOUT/test/ABOUT_00001", "test", "ABOUT", 0.40),
        ("ABOUT/train/ABOUT_00001", "train", "ABOUT", 0.40),
    ]

    grid = tmp_path / "grid"
    touch(grid / "s1" / "bbaf2n.mpg")
    touch(grid / "align" / "bbaf2n.align", "0 100 sil\n100 30000 bin\n")
    assert detect_layout(grid) == "grid"
    (source,) = find_sources(grid, "grid", ("train", "val", "test"), RATIOS)
    assert source.words[0] == "BIN" and source.word_spans == (("BIN", 0.004, 1.2),)

    folder = tmp_path / "talks"
    touch(folder / "a" / "clip.mov")
    touch(folder / "b.avi")
    assert detect_layout(folder) == "folder"
    assert sorted(s.id for s in find_sources(folder, "folder", ("train", "val", "test"), RATIOS)) == [
        "a/clip.mov",
        "b.avi",
    ]


def test_hash_split_is_deterministic_and_follows_the_ratios():
    keys = [f"clip_{i}.mp4" for i in range(2000)]
    splits = [hash_split(k, RATIOS) for k in keys]
    assert splits == [hash_split(k, RATIOS) for k in keys]
    assert 0.75 < splits.count("train") / len(keys) < 0.85


def test_missing_or_empty_source_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TalkfaceError, match="not found"):
        find_sources(tmp_path / "nope", "lrw", ("train",), RATIOS)
    with pytest.raises(TalkfaceError, match="no folder clips"):
        find_sources(tmp_path, "folder", ("train",), RATIOS)
