"""`talkface prepare` end to end on real-face clips written by the tests, and on the real media set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from litdata import StreamingDataset

from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.prepare import PrepareSettings, prepare_dataset
from tests.helpers.media_factory import face_clip, lrw_tree, tone, write_mp4_file

WORDS = {"ABOUT": {"train": 3, "val": 1, "test": 1}, "BLACK": {"train": 3, "val": 1, "test": 1}}


def read_split(out: Path, split: str, part: str = "light") -> dict[str, dict]:
    dataset = StreamingDataset(str(out / split / part))
    return {item["id"]: item for item in (dataset[i] for i in range(len(dataset)))}


@pytest.fixture(scope="session")
def lrw_source(tmp_path_factory) -> Path:
    return lrw_tree(tmp_path_factory.mktemp("lrw_raw"), WORDS)


@pytest.fixture(scope="session")
def prepared(lrw_source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    prepare_dataset(PrepareSettings(src=lrw_source, out=out, workers=1, progress=False))
    return out


def test_prepared_lrw_has_every_field_with_the_right_shape_and_dtype(prepared):
    meta = json.loads((prepared / "meta.json").read_text())
    assert meta["vocabulary"] == ["ABOUT", "BLACK"] and meta["crop_size"] == 128
    assert {k: v["samples"] for k, v in meta["splits"].items()} == {"train": 6, "val": 2, "test": 2}
    assert len(meta["pca"]["mean"]) == 136 and len(meta["pca"]["components"]) == 20
    assert len(meta["template"]) == 68

    items = read_split(prepared, "train", "full")
    assert sorted(items) == [f"{w}/train/{w}_0000{i}" for w in ("ABOUT", "BLACK") for i in (1, 2, 3)]
    item = items["ABOUT/train/ABOUT_00001"]
    assert item["word"] == 0 and items["BLACK/train/BLACK_00001"]["word"] == 1
    assert item["landmarks"].shape == (29, 68, 2) and item["landmarks"].dtype == np.float32
    assert np.allclose(item["landmarks_norm"] * 128, item["landmarks"], atol=1e-4)
    # The face sits where the template says: landmarks well inside the crop.
    assert 10 < item["landmarks"].min() and item["landmarks"].max() < 118
    assert item["features"].shape == ((29 + 6) * 4, 80) and item["features"].dtype == np.float16
    assert item["audio"].shape == (29 * 640,) and item["audio"].dtype == np.int16
    assert item["transforms"].shape == (29, 2, 3)
    assert item["frame_offsets"].shape == (30,) and item["frame_offsets"][-1] == len(item["frames_jpeg"])
    assert item["word_mask"].shape == (29,) and item["word_mask"].dtype == np.uint8
    assert "frames_jpeg" not in read_split(prepared, "train", "light")["ABOUT/train/ABOUT_00001"]


def test_word_mask_matches_the_txt_duration_and_is_centred(prepared, lrw_source):
    for item in read_split(prepared, "train").values():
        txt = (lrw_source / item["id"]).with_suffix(".txt").read_text()
        seconds = float(txt.split("Duration:")[1].split()[0])
        inside = np.flatnonzero(item["word_mask"])
        assert abs(len(inside) - seconds * 25) <= 1
        assert abs((inside.min() + inside.max() + 1) / 2 - 14.5) <= 0.5


def test_rerun_is_idempotent_and_changed_settings_are_refused(prepared, lrw_source):
    before = {p: p.stat().st_mtime_ns for p in (prepared / "work").rglob("*.npz")}
    report = prepare_dataset(PrepareSettings(src=lrw_source, out=prepared, workers=1, progress=False))
    assert report.processed_now == 0 and report.total_samples == 10
    assert {p: p.stat().st_mtime_ns for p in (prepared / "work").rglob("*.npz")} == before
    with pytest.raises(TalkfaceError, match="other settings"):
        prepare_dataset(PrepareSettings(src=lrw_source, out=prepared, crop_size=256, workers=1, progress=False))


@pytest.fixture
def tree_with_bad_clips(tmp_path) -> Path:
    root = tmp_path / "talks"
    for seed in range(3):
        face_clip(root / f"good_{seed}.mp4", frames=30, seed=seed)
    good = (root / "good_0.mp4").read_bytes()
    (root / "corrupt.mp4").write_bytes(good[: len(good) // 3])
    (root / "empty.mp4").write_bytes(b"")
    noise = np.random.default_rng(0).integers(0, 255, (30, 128, 128, 3), dtype=np.uint8)
    write_mp4_file(root / "no_face.mp4", noise, tone(1.2, 16000))
    return root


def test_bad_clips_are_skipped_with_reasons_and_the_run_goes_on(tree_with_bad_clips, tmp_path, capsys):
    out = tmp_path / "prepared"
    code = main(
        [
            "prepare",
            "--src",
            str(tree_with_bad_clips),
            "--out",
            str(out),
            "--workers",
            "1",
            "--layout",
            "folder",
            "--split-ratios",
            "1,0,0",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "3 skipped" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"corrupt.mp4", "empty.mp4", "no_face.mp4"}
    assert "empty" in reasons["empty.mp4"] and "no face" in reasons["no_face.mp4"]
    assert report["samples"] == {"train": 3}


def test_nothing_prepared_is_a_failure(tmp_path, capsys):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "empty.mp4").write_bytes(b"")
    code = main(["prepare", "--src", str(root), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"])
    assert code != 0
    assert "nothing was prepared" in capsys.readouterr().err
    assert not (tmp_path / "out" / "meta.json").exists()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result_without_redoing_finished_clips(tmp_path):
    source = lrw_tree(tmp_path / "raw", {"ABOUT": {"train": 6}, "BLACK": {"train": 6}})
    command = [sys.executable, "-m", "talkface.cli", "prepare", "--src", str(source), "--workers", "1", "--no-progress"]
    reference = tmp_path / "uninterrupted"
    subprocess.run(command + ["--out", str(reference)], check=True, capture_output=True, timeout=300)

    out = tmp_path / "interrupted"
    process = subprocess.Popen(command + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list((out / "work").rglob("*.npz"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p: p.stat().st_mtime_ns for p in (out / "work").rglob("*.npz")}
    assert 3 <= len(finished) < 12 and not (out / "meta.json").exists()

    subprocess.run(command + ["--out", str(out)], check=True, capture_output=True, timeout=300)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # not redone
    expected, got = read_split(reference, "train", "full"), read_split(out, "train", "full")
    assert sorted(expected) == sorted(got)
    for key, item in expected.items():
        for field, value in item.items():
            assert np.array_equal(np.asarray(value), np.asarray(got[key][field])), (key, field)
    assert (
        json.loads((reference / "meta.json").read_text())["pca"] == json.loads((out / "meta.json").read_text())["pca"]
    )


@pytest.mark.slow
def test_real_videos_all_prepare_as_a_folder(real_data, tmp_path):
    report = prepare_dataset(
        PrepareSettings(
            src=real_data / "videos", out=tmp_path / "out", layout="folder", split_ratios=(1, 0, 0), progress=False
        )
    )
    assert report.skipped == []
    ids = {item_id.split("#")[0] for item_id in read_split(tmp_path / "out", "train")}
    assert ids == {p.name for p in (real_data / "videos").iterdir()}


@pytest.mark.slow
def test_grid_clips_are_labelled_from_their_file_names(real_data, tmp_path):
    grid = tmp_path / "grid"
    grid.mkdir()
    for clip in (real_data / "videos").glob("grid_*.mpg"):
        os.symlink(clip, grid / clip.name.removeprefix("grid_"))
    # A hand-written alignment for one clip ("bin blue at f two now"), in GRID's 1/25000 s units.
    (grid / "bbaf2n.align").write_text(
        "0 12500 sil\n12500 20000 bin\n20000 27500 blue\n27500 32500 at\n32500 40000 f\n40000 50000 two\n50000 60000 now\n60000 74500 sil\n"
    )
    report = prepare_dataset(
        PrepareSettings(
            src=grid, out=tmp_path / "out", layout="grid", split_ratios=(1, 0, 0), workers=1, progress=False
        )
    )
    assert report.skipped == [] and report.samples == {"train": 8}
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    items = read_split(tmp_path / "out", "train")
    vocabulary = meta["vocabulary"]
    # Window 0 covers 0-1.16 s: its centre (0.58 s) lies in "bin" (0.5-0.8 s); window 1 centre 1.74 s in "two".
    labelled = {k: vocabulary[v["word"]] for k, v in items.items() if v["word"] >= 0}
    assert labelled == {"bbaf2n#000000": "BIN", "bbaf2n#000029": "TWO"}
    assert all(v["word"] == -1 for k, v in items.items() if not k.startswith("bbaf2n"))
