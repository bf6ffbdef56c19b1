"""LRWDataModule: fields per stage, no frames for stage 1, batch sizes, DDP sharding."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import lightning as L
import pytest
import torch

from datamodules import LRWDataModule
from talkface.audio.phones import CONTEXT, PHONES, phone_rows, phone_windows
from talkface.errors import TalkfaceError
from talkface.prepare import PrepareSettings, prepare_dataset
from tests.helpers.media_factory import lrw_tree
from tests.helpers.real_data import REPO

STAGE_ONE = ["id", "audio_windows", "landmarks", "identity_landmarks", "word", "word_mask", "audio"]
STAGE_TWO = STAGE_ONE + ["frames", "reference_frame", "reference_landmarks"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    raw = lrw_tree(tmp_path_factory.mktemp("raw"), {"ABOUT": {"train": 4, "val": 3}, "BLACK": {"train": 4, "val": 2}})
    out = tmp_path_factory.mktemp("prepared")
    prepare_dataset(PrepareSettings(src=raw, out=out, workers=1, progress=False))
    return out


def first_batch(datamodule: LRWDataModule, split: str = "train") -> dict:
    datamodule.setup("fit")
    loader = datamodule.train_dataloader() if split == "train" else datamodule.val_dataloader()
    return next(iter(loader))


def test_every_field_has_its_shape_and_dtype(prepared):
    batch = first_batch(LRWDataModule(str(prepared), batch_size=4, num_workers=0, fields=STAGE_TWO))
    expected = {
        "audio_windows": ((4, 29, 28, 80), torch.float32),
        "landmarks": ((4, 29, 68, 2), torch.float32),
        "identity_landmarks": ((4, 68, 2), torch.float32),
        "word": ((4,), torch.int64),
        "word_mask": ((4, 29), torch.float32),
        "audio": ((4, 29 * 640), torch.float32),
        "frames": ((4, 29, 3, 128, 128), torch.uint8),
        "reference_frame": ((4, 3, 128, 128), torch.uint8),
        "reference_landmarks": ((4, 68, 2), torch.float32),
    }
    for name, (shape, dtype) in expected.items():
        assert tuple(batch[name].shape) == shape and batch[name].dtype == dtype, name
    assert len(batch["id"]) == 4
    assert 0.05 < batch["landmarks"].min() and batch["landmarks"].max() < 0.95  # normalised to the crop
    assert set(batch["word"].tolist()) <= {0, 1}


def test_stage_one_reads_no_frame_data(prepared, tmp_path):
    copy = tmp_path / "no_frames"
    shutil.copytree(prepared, copy)
    for split in ("train", "val"):
        shutil.rmtree(copy / split / "full")  # the frames are gone
    batch = first_batch(LRWDataModule(str(copy), batch_size=2, num_workers=0, fields=STAGE_ONE))
    assert batch["audio_windows"].shape[0] == 2
    with pytest.raises(TalkfaceError, match="not prepared"):
        LRWDataModule(str(copy), batch_size=2, num_workers=0, fields=STAGE_TWO).setup("fit")


def test_validation_is_deterministic_and_unaugmented(prepared):
    datamodule = LRWDataModule(
        str(prepared),
        batch_size=2,
        num_workers=0,
        fields=STAGE_TWO,
        color_jitter=0.5,
        max_shift=4,
        landmark_jitter=0.05,
    )
    first, second = first_batch(datamodule, "val"), first_batch(datamodule, "val")
    assert first["id"] == second["id"]
    assert torch.equal(first["frames"], second["frames"]) and torch.equal(first["landmarks"], second["landmarks"])
    plain = first_batch(LRWDataModule(str(prepared), batch_size=2, num_workers=0, fields=STAGE_TWO), "val")
    assert torch.equal(first["frames"], plain["frames"])


def test_training_augmentation_changes_frames_and_landmarks(prepared):
    fields = ["id", "landmarks", "frames"]
    plain = LRWDataModule(str(prepared), batch_size=8, num_workers=0, fields=fields)
    augmented = LRWDataModule(
        str(prepared), batch_size=8, num_workers=0, fields=fields, color_jitter=0.3, max_shift=3, landmark_jitter=0.01
    )
    a, b = first_batch(plain), first_batch(augmented)
    by_id = {i: k for k, i in enumerate(b["id"])}
    order = [by_id[i] for i in a["id"]]
    assert not torch.equal(a["frames"], b["frames"][order])
    assert not torch.allclose(a["landmarks"], b["landmarks"][order])


def test_setup_twice_keeps_the_same_datasets_and_reads_the_vocabulary(prepared):
    datamodule = LRWDataModule(str(prepared), batch_size=2, num_workers=0)
    datamodule.setup("fit")
    first = dict(datamodule.datasets)
    datamodule.setup("fit")
    assert datamodule.datasets == first and set(first) == {"train", "val"}
    assert datamodule.num_words == 2 and datamodule.vocabulary == ["ABOUT", "BLACK"]


def test_global_batch_size_is_split_over_devices_and_must_divide(prepared):
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    datamodule = LRWDataModule(str(prepared), batch_size=6, num_workers=0)
    datamodule.trainer = trainer
    datamodule.setup("fit")
    assert datamodule.per_device_batch_size == 3
    odd = LRWDataModule(str(prepared), batch_size=5, num_workers=0)
    odd.trainer = trainer
    with pytest.raises(TalkfaceError, match="does not divide"):
        odd.setup("fit")


def test_unprepared_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TalkfaceError, match="not a prepared dataset"):
        LRWDataModule(str(tmp_path), batch_size=2).setup("fit")


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "val"])
def test_two_ddp_ranks_see_disjoint_samples_that_cover_the_split(prepared, tmp_path, split):
    script = REPO / "tests" / "scripts" / "ddp_sample_ids.py"
    result = subprocess.run(
        [sys.executable, str(script), str(prepared), str(tmp_path), split],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0 and rank1 and not set(rank0) & set(rank1)
    meta = json.loads((prepared / "meta.json").read_text())
    assert len(set(rank0) | set(rank1)) == meta["splits"][split]["samples"]


def test_audio_warp_stretches_each_training_clips_bands_and_never_evaluation(prepared):
    fields = ["id", "audio_windows"]
    plain = LRWDataModule(str(prepared), batch_size=8, num_workers=0, fields=fields)
    warped = LRWDataModule(str(prepared), batch_size=8, num_workers=0, fields=fields, audio_warp=0.2)
    a, b = first_batch(plain), first_batch(warped)
    b_windows = b["audio_windows"][[list(b["id"]).index(i) for i in a["id"]]]
    assert not torch.allclose(a["audio_windows"], b_windows, atol=1e-3)
    # Interpolation along the bands: every warped value lies within its row's plain range.
    low, high = a["audio_windows"].amin(-1, keepdim=True), a["audio_windows"].amax(-1, keepdim=True)
    assert bool(((b_windows >= low - 1e-4) & (b_windows <= high + 1e-4)).all())
    val = first_batch(warped, "val")["audio_windows"]
    assert torch.equal(val, first_batch(plain, "val")["audio_windows"])


def test_audio_jitter_shifts_each_training_clip_by_one_level_and_tilt_and_never_evaluation(prepared):
    fields = ["id", "audio_windows"]
    plain = LRWDataModule(str(prepared), batch_size=8, num_workers=0, fields=fields)
    jittered = LRWDataModule(str(prepared), batch_size=8, num_workers=0, fields=fields, audio_jitter=1.0)
    a, b = first_batch(plain), first_batch(jittered)
    order = [list(b["id"]).index(i) for i in a["id"]]
    offset = b["audio_windows"][order] - a["audio_windows"]  # (B, T, W, bands)
    per_clip = offset.flatten(1, 2)  # every feature row of a clip got the same per-band offset
    assert torch.allclose(per_clip, per_clip[:, :1].expand_as(per_clip), atol=1e-5)
    assert per_clip[:, 0].abs().amax() > 0.01 and per_clip[:, 0].abs().amax() <= 1.5 + 1e-5
    val = first_batch(jittered, "val")["audio_windows"]
    assert torch.equal(val, first_batch(plain, "val")["audio_windows"])


def test_phone_windows_are_decoded_from_each_samples_own_audio(prepared):
    fields = ["id", "audio", "phone_windows"]
    batch = first_batch(LRWDataModule(str(prepared), batch_size=2, num_workers=0, fields=fields), "val")
    frames = batch["audio"].shape[1] // 640
    assert batch["phone_windows"].shape == (2, frames, CONTEXT, len(PHONES))
    for audio, windows in zip(batch["audio"], batch["phone_windows"], strict=True):
        assert torch.equal(windows, torch.from_numpy(phone_windows(phone_rows(audio.numpy(), frames))))
