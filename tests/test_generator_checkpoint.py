"""Frames rendered from a stage-2 checkpoint trained in this test session follow the target mouth."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_modules import FaceGenModule
from talkface.cli import main
from talkface.metrics.image_quality import crop_boxes, mouth_boxes
from talkface.networks.pixel_range import to_uint8, to_unit
from tests.helpers.cli import data_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def generator_checkpoint(tiny_prepared, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("generator_run")
    code = main(
        [
            "fit",
            "-c",
            "configs/generator/sample.yaml",
            *data_overrides(tiny_prepared, root),
            "--data.batch_size",
            "4",
            "--trainer.max_epochs",
            "40",
            "--trainer.max_time",
            "00:00:03:00",
            "--trainer.limit_val_batches",
            "0",
        ]
    )
    assert code == 0
    return next(root.rglob("last.ckpt"))


def test_rendered_frames_have_the_right_shape_and_range_and_follow_the_mouth(generator_checkpoint, tiny_prepared):
    from datamodules import LRWDataModule

    model = FaceGenModule.load_from_checkpoint(generator_checkpoint, map_location="cpu").eval()
    data = LRWDataModule(str(tiny_prepared), batch_size=1, num_workers=0, fields=list(FaceGenModule.data_fields))
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    reference, reference_landmarks = to_unit(batch["reference_frame"][0]), batch["reference_landmarks"][0]
    landmarks = batch["landmarks"][0]

    frames = to_uint8(model.render_sequence(reference, reference_landmarks, landmarks))
    assert frames.shape == (29, 3, 128, 128) and frames.dtype == torch.uint8
    assert 0 <= int(frames.min()) and int(frames.max()) <= 255 and frames.float().std() > 10

    # The same face with the lower lip and jaw pulled down (open) and lifted back (closed).
    closed, opened = reference_landmarks.clone(), reference_landmarks.clone()
    lower = [5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 64, 65, 66, 67]
    closed[[65, 66, 67], 1] = closed[[61, 62, 63], 1]
    opened[lower, 1] += 0.06  # ~8 px of a 128 crop
    pair = to_uint8(model.render_sequence(reference, reference_landmarks, torch.stack([closed, opened]))).float() / 255
    boxes = mouth_boxes(torch.stack([opened, opened]), 128)
    mouth_closed, mouth_open = crop_boxes(pair, boxes)
    change_inside = (mouth_open - mouth_closed).abs().mean()
    change_overall = (pair[1] - pair[0]).abs().mean()
    assert change_inside > 2 * change_overall  # the difference sits at the mouth
    assert mouth_open.mean() < mouth_closed.mean() - 0.01  # an open mouth shows the dark inside
