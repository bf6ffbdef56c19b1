"""Clips without sound (the corpus's silent/) become stage-2 data with `talkface prepare --video-only`,
and a model that listens refuses such a dataset instead of learning from silence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamodules import LRWDataModule
from talkface.errors import TalkfaceError
from talkface.prepare import PrepareSettings, prepare_dataset
from tests.helpers.cli import run_cli
from tests.helpers.media_factory import face_clip
from tests.helpers.real_data import CORPUS, needs_corpus

STAGE_TWO_FIELDS = ["id", "frames", "landmarks", "reference_frame", "reference_landmarks", "audio"]


@pytest.fixture(scope="module")
def silent_clips(tmp_path_factory) -> Path:
    """Two face clips with no audio stream and one with sound."""
    raw = tmp_path_factory.mktemp("silent_raw")
    face_clip(raw / "mute_a.mp4", seed=0, with_audio=False)
    face_clip(raw / "mute_b.mp4", seed=1, with_audio=False)
    face_clip(raw / "spoken.mp4", seed=2, with_audio=True)
    return raw


def prepare(raw: Path, out: Path, video_only: bool):
    settings = PrepareSettings(
        src=raw, out=out, layout="folder", workers=1, progress=False, split_ratios=(1, 0, 0), video_only=video_only
    )
    return prepare_dataset(settings)


def test_clips_without_sound_are_skipped_with_the_option_to_use(silent_clips, tmp_path):
    report = prepare(silent_clips, tmp_path / "out", video_only=False)
    assert sorted(s["id"] for s in report.skipped) == ["mute_a.mp4", "mute_b.mp4"]
    assert all("--video-only" in s["reason"] for s in report.skipped)
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["audio"] is True


def test_video_only_prepares_every_clip_with_silence_and_says_so(silent_clips, tmp_path):
    out = tmp_path / "out"
    report = prepare(silent_clips, out, video_only=True)
    assert report.skipped == [] and report.total_samples == 3
    assert json.loads((out / "meta.json").read_text())["audio"] is False

    data = LRWDataModule(str(out), batch_size=3, num_workers=0, fields=STAGE_TWO_FIELDS)
    data.setup("fit")
    [batch] = list(data.train_dataloader())
    assert batch["frames"].shape[:2] == (3, 29)
    # The clip that had sound is stored silent too: nothing of a dataset's sound is half there.
    assert batch["audio"].abs().max() == 0


def test_a_model_that_listens_refuses_a_video_only_dataset(silent_clips, tmp_path):
    out = tmp_path / "out"
    prepare(silent_clips, out, video_only=True)
    data = LRWDataModule(str(out), batch_size=3, num_workers=0, fields=["id", "audio_windows", "landmarks"])
    with pytest.raises(TalkfaceError, match=r"prepared with --video-only \(no sound\).*audio_windows"):
        data.setup("fit")


def test_the_same_folder_cannot_switch_to_or_from_video_only(silent_clips, tmp_path):
    out = tmp_path / "out"
    prepare(silent_clips, out, video_only=True)
    with pytest.raises(TalkfaceError, match="video_only differ"):
        prepare(silent_clips, out, video_only=False)


def test_video_only_with_av_offsets_is_one_line(tmp_path, silent_clips):
    offsets = tmp_path / "offsets.csv"
    offsets.write_text("file,offset_frames\nmute_a.mp4,2\n")
    args = ["prepare", "--src", str(silent_clips), "--out", str(tmp_path / "out"), "--video-only"]
    result = run_cli([*args, "--av-offsets", str(offsets)])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "talkface prepare: error: --av-offsets moves sound, and --video-only prepares none: give one of them"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@needs_corpus()
def test_the_corpus_clips_without_sound_are_all_prepared(tmp_path):
    report = prepare_dataset(
        PrepareSettings(
            src=CORPUS / "silent",
            out=tmp_path / "silent",
            layout="folder",
            identities=CORPUS / "identities.csv",
            video_only=True,
            progress=False,
        )
    )
    assert report.skipped == [] and report.samples == {"train": 151}
