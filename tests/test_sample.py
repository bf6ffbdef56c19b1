"""The built-in sample: LRW layout, decodable clips, determinism, and a mouth that follows speech."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkface import FPS, SAMPLE_RATE
from talkface.cli import main
from talkface.errors import NoFaceError, TalkfaceError
from talkface.media import read_video
from talkface.sample import build_sample, choose_words, split_counts, vocabulary
from talkface.sample.builder import NUM_SAMPLES
from talkface.sample.face_warp import astronaut_rig, inner_lip_gap
from talkface.sample.speech import synthesize
from talkface.sample.visemes import viseme_track
from tests.helpers.real_data import LRW_WORDS, REAL_DATA, needs_real_data

WORDS = ["ABOUT", "PEOPLE"]
SPLITS = {"train": 2, "val": 1, "test": 1}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "lrw"
    build_sample(out, words=WORDS, splits=SPLITS, seed=0, workers=2, progress=False)
    return out


def clips(root: Path) -> list[Path]:
    return sorted(root.glob("*/*/*.mp4"))


def lip_gap_series(path: Path, extractor) -> np.ndarray:
    """dlib's inner-lip gap per frame; NaN where no face is found."""
    gaps = []
    for frame in read_video(path).frames:
        try:
            gaps.append(inner_lip_gap(extractor.landmarks(frame)))
        except NoFaceError:
            gaps.append(np.nan)
    return np.array(gaps)


# ---- pieces -------------------------------------------------------------------------------------


def test_vocabulary_is_lrw_and_ships_with_the_package():
    words = vocabulary()
    assert len(words) == 500 and list(words) == sorted(words)
    if LRW_WORDS.is_file():
        assert list(words) == LRW_WORDS.read_text().split()


def test_words_are_chosen_from_the_vocabulary():
    assert choose_words(words=["about", "ABSOLUTELY", "about"]) == ["ABOUT", "ABSOLUTELY"]
    spread = choose_words(num_words=10)
    assert len(spread) == 10 and spread[0] == "ABOUT" and spread[-1] == vocabulary()[-1]
    with pytest.raises(TalkfaceError, match="ABOUTT.*did you mean ABOUT"):
        choose_words(words=["ABOUTT"])
    with pytest.raises(TalkfaceError):
        choose_words(num_words=0)


def test_split_counts_are_lrw_like():
    assert split_counts(5) == {"train": 3, "val": 1, "test": 1}
    assert split_counts(10) == {"train": 6, "val": 2, "test": 2}
    assert split_counts(1) == {"train": 1, "val": 0, "test": 0}


def test_espeak_gives_speech_with_phoneme_timings():
    speech = synthesize("about", voice="en-us+f3", rate=160)
    assert speech.sample_rate == SAMPLE_RATE
    assert np.abs(speech.audio).max() > 0.1
    names = [p.name for p in speech.phonemes]
    assert "b" in names and "t" in names
    starts = [p.start for p in speech.phonemes]
    assert starts == sorted(starts)
    assert 0.2 < speech.word_duration < 1.0
    assert speech.word_end <= len(speech.audio) / SAMPLE_RATE + 1e-3
    # A faster voice says the same word in less time.
    assert synthesize("about", voice="en-us+f3", rate=260).word_duration < speech.word_duration


def test_visemes_are_smooth_closed_in_silence_and_close_for_bilabials():
    speech = synthesize("people", voice="en-us+m3", rate=150)
    offset = 0.58 - (speech.word_start + speech.word_end) / 2
    track = viseme_track(speech.phonemes, 29, offset=offset)
    assert track.openness.shape == (29,)
    assert 0.0 <= track.openness.min() and track.openness.max() <= 1.0
    assert track.openness[:3].max() < 0.02 and track.openness[-3:].max() < 0.02  # silence: closed
    assert np.abs(np.diff(track.openness)).max() < 0.35  # no jumps
    # /p/ between the vowels of "people" closes the mouth again: a dip between two peaks.
    open_frames = track.openness > 0.1
    assert (np.diff(open_frames.astype(int)) == 1).sum() >= 2


def test_the_mouth_opens_with_openness():
    rig = astronaut_rig()
    shut = rig.moved_landmarks(0.0, 0.0, 0.0)
    wide = rig.moved_landmarks(1.0, 0.0, 0.0)
    assert inner_lip_gap(shut) < 0.5
    assert inner_lip_gap(wide) > 0.3 * rig.mouth_width
    assert wide[8, 1] > shut[8, 1] + 5  # the chin drops
    closed, opened = rig.render(0.0, 0.0, 0.0), rig.render(0.8, 0.2, 0.0)
    mouth = (slice(110, 170), slice(85, 170))
    assert closed[mouth].mean() - opened[mouth].mean() > 5  # a dark opening appears


# ---- the built sample ----------------------------------------------------------------------------


def test_layout_and_txt_are_lrw(sample):
    for word in WORDS:
        for split, count in SPLITS.items():
            folder = sample / word / split
            names = sorted(p.name for p in folder.iterdir())
            expected = sorted(f"{word}_{i:05d}{ext}" for i in range(1, count + 1) for ext in (".mp4", ".txt"))
            assert names == expected
    lines = (sample / "ABOUT" / "train" / "ABOUT_00001.txt").read_text().splitlines()
    assert lines[0] == "Text:  ABOUT"
    assert lines[1].startswith("Conf:  ")
    assert lines[4].startswith("Duration: ") and lines[4].endswith(" seconds")
    duration = float(lines[4].split(" ")[1])  # how LRW readers parse it
    info = json.loads((sample / "visemes.json").read_text())["ABOUT/train/ABOUT_00001"]
    assert duration == pytest.approx(info["word_end"] - info["word_start"], abs=0.006)
    # Beside the two JSON files only the hidden marker that makes the folder the sample's own.
    assert sorted(p.name for p in sample.iterdir() if p.is_file()) == [
        ".talkface-sample",
        "sample_info.json",
        "visemes.json",
    ]


def test_clips_decode_to_lrw_shape_with_the_word_centred(sample):
    records = json.loads((sample / "visemes.json").read_text())
    assert len(records) == len(clips(sample)) == len(WORDS) * sum(SPLITS.values())
    for path in clips(sample):
        clip = read_video(path)
        assert abs(len(clip.frames) - 29) <= 1 and clip.frames.shape[1:] == (256, 256, 3)
        assert clip.fps == FPS
        assert abs(len(clip.audio) - NUM_SAMPLES) <= SAMPLE_RATE // FPS
        record = records[f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"]
        assert len(record["openness"]) == 29
        centre = (record["word_start"] + record["word_end"]) / 2
        assert centre == pytest.approx(NUM_SAMPLES / SAMPLE_RATE / 2, abs=0.01)
        # Speech is loud inside the word and near-silent outside it.
        start, end = (int(record[k] * SAMPLE_RATE) for k in ("word_start", "word_end"))
        inside = np.sqrt(np.mean(clip.audio[start:end] ** 2))
        outside = np.sqrt(np.mean(np.concatenate([clip.audio[: start - 800], clip.audio[end + 800 :]]) ** 2))
        assert inside > 0.03 and outside < inside / 10


def test_clips_of_a_word_differ_in_voice_and_look(sample):
    records = json.loads((sample / "visemes.json").read_text())
    about = [records[f"ABOUT/train/ABOUT_{i:05d}"] for i in (1, 2)]
    assert about[0]["settings"] != about[1]["settings"]
    assert about[0]["settings"]["voice"] != about[1]["settings"]["voice"] or (
        about[0]["settings"]["rate_wpm"] != about[1]["settings"]["rate_wpm"]
    )
    first, second = (read_video(sample / "ABOUT" / "train" / f"ABOUT_{i:05d}.mp4") for i in (1, 2))
    assert not np.array_equal(first.audio, second.audio)
    assert np.abs(first.frames[0].astype(int) - second.frames[0].astype(int)).mean() > 2


def test_rebuilding_skips_complete_clips(sample):
    before = {p: p.read_bytes() for p in sample.rglob("*") if p.is_file()}
    summary = build_sample(sample, words=WORDS, splits=SPLITS, seed=0, workers=1, progress=False)
    assert summary.built == 0 and summary.skipped == summary.clips
    assert {p: p.read_bytes() for p in sample.rglob("*") if p.is_file()} == before


def test_an_interrupted_build_is_completed(sample, tmp_path):
    out = tmp_path / "lrw"
    shutil.copytree(sample, out)
    (out / "PEOPLE" / "val" / "PEOPLE_00001.mp4").unlink()
    summary = build_sample(out, words=WORDS, splits=SPLITS, seed=0, workers=1, progress=False)
    assert summary.built == 1
    rebuilt = out / "PEOPLE" / "val" / "PEOPLE_00001.mp4"
    assert rebuilt.read_bytes() == (sample / "PEOPLE" / "val" / "PEOPLE_00001.mp4").read_bytes()


def test_a_folder_built_with_another_seed_is_refused(sample, tmp_path):
    out = tmp_path / "lrw"
    shutil.copytree(sample, out)
    with pytest.raises(TalkfaceError, match="another seed"):
        build_sample(out, words=WORDS, splits=SPLITS, seed=1, workers=1, progress=False)


def test_bad_faces_folders_are_user_errors(tmp_path):
    with pytest.raises(TalkfaceError, match="does not exist"):
        build_sample(tmp_path / "a", words=["ABOUT"], faces_dir=tmp_path / "missing", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TalkfaceError, match="no photos"):
        build_sample(tmp_path / "b", words=["ABOUT"], faces_dir=empty, progress=False)
    faceless = tmp_path / "faceless"
    faceless.mkdir()
    gradient = np.tile(np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None], (200, 1, 3))
    cv2.imwrite(str(faceless / "wall.png"), gradient)
    with pytest.raises(NoFaceError, match="wall.png"):
        build_sample(tmp_path / "c", words=["ABOUT"], faces_dir=faceless, progress=False)


# ---- the command line ---------------------------------------------------------------------------


def test_cli_builds_the_layout(tmp_path, capsys):
    out = tmp_path / "lrw"
    code = main(
        [
            "sample",
            "--out",
            str(out),
            "--words",
            "ABOUT",
            "--train",
            "1",
            "--val",
            "0",
            "--test",
            "0",
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    assert (out / "ABOUT" / "train" / "ABOUT_00001.mp4").is_file()
    assert (out / "ABOUT" / "train" / "ABOUT_00001.txt").is_file()
    assert "1 clips of 1 words" in capsys.readouterr().out


def test_cli_unknown_word_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["sample", "--out", str(tmp_path / "lrw"), "--words", "ABOUT,NOTAWORD", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "NOTAWORD" in err
    assert not (tmp_path / "lrw").exists()


# ---- slow: determinism, and the mouth measured by dlib -------------------------------------------


@pytest.mark.slow
def test_same_seed_gives_the_same_bytes_whatever_the_workers(sample, tmp_path):
    again = tmp_path / "again"
    build_sample(again, words=WORDS, splits=SPLITS, seed=0, workers=1, progress=False)
    files = sorted(p.relative_to(sample) for p in sample.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for relative in files:
        assert (sample / relative).read_bytes() == (again / relative).read_bytes(), relative


@pytest.mark.slow
def test_dlib_finds_the_face_and_the_lip_gap_follows_the_visemes(sample):
    from talkface.faces import get_extractor

    extractor = get_extractor("dlib")
    records = json.loads((sample / "visemes.json").read_text())
    openness, gaps = [], []
    for path in clips(sample):
        record = records[f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"]
        series = lip_gap_series(path, extractor)
        openness.extend(record["openness"][: len(series)])
        gaps.extend(series)
    openness, gaps = np.array(openness), np.array(gaps)
    found = ~np.isnan(gaps)
    assert found.mean() >= 0.95
    r = np.corrcoef(openness[found], gaps[found])[0, 1]
    assert r >= 0.8, f"lip gap vs viseme openness: r = {r:.3f}"


@pytest.mark.slow
@needs_real_data()
def test_extra_face_photos_are_animated(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    shutil.copy(REAL_DATA / "faces" / "makeittalk_obama.jpg", faces)
    out = tmp_path / "lrw"
    build_sample(
        out, words=["ABOUT"], splits={"train": 6, "val": 0, "test": 0}, faces_dir=faces, workers=2, progress=False
    )
    records = json.loads((out / "visemes.json").read_text())
    used = {r["settings"]["face"] for r in records.values()}
    assert used == {"astronaut", "makeittalk_obama.jpg"}
    from talkface.faces import get_extractor

    extractor = get_extractor("dlib")
    for clip_id, record in records.items():
        if record["settings"]["face"] != "astronaut":
            gaps = lip_gap_series(out / f"{clip_id}.mp4", extractor)
            assert np.isnan(gaps).mean() <= 0.05
            assert np.corrcoef(np.array(record["openness"])[~np.isnan(gaps)], gaps[~np.isnan(gaps)])[0, 1] > 0.7
