"""`mouth_from_photo`: a smiling photo keeps its own teeth where its mouth is already open."""

from __future__ import annotations

import pytest
import torch

from lightning_modules import FaceGenModule
from talkface.generation.checkpoints import load_stage
from talkface.generation.face_input import load_face
from talkface.media import read_video
from talkface.networks.landmark_warp import inner_mouth_mask, new_opening_share
from talkface.networks.pixel_range import to_uint8, to_unit
from talkface.weights import GENERATOR
from tests.helpers.media_factory import astronaut_face, write_audio_file


def _with_gap(gap: float) -> torch.Tensor:
    """68 points whose facing inner-lip points (61-67, 62-66, 63-65) are `gap` apart."""
    points = torch.full((68, 2), 0.5)
    points[60], points[64] = torch.tensor([0.4, 0.6]), torch.tensor([0.6, 0.6])
    for upper, lower, x in ((61, 67, 0.45), (62, 66, 0.5), (63, 65, 0.55)):
        points[upper] = torch.tensor([x, 0.6 - gap / 2])
        points[lower] = torch.tensor([x, 0.6 + gap / 2])
    return points


def test_the_new_share_is_what_the_photo_does_not_show():
    target = torch.stack([_with_gap(0.04)] * 3)
    photo = torch.stack([_with_gap(0.0), _with_gap(0.02), _with_gap(0.06)])
    assert torch.allclose(new_opening_share(target, photo), torch.tensor([1.0, 0.5, 0.0]))


@pytest.fixture(scope="module")
def smiling():
    """The released generator and the astronaut's toothy smile, aligned."""
    model, _ = load_stage(GENERATOR, FaceGenModule)
    face = load_face(astronaut_face(256), int(model.hparams.image_size))
    return model, face


def test_a_photo_held_still_keeps_its_teeth_only_with_mouth_from_photo(smiling):
    model, face = smiling
    reference = to_unit(torch.from_numpy(face.crop).permute(2, 0, 1))
    points = torch.from_numpy(face.landmarks)
    inside = inner_mouth_mask(points[None], face.crop.shape[0])[0, 0] > 0.5
    assert inside.sum() > 50  # the photo's mouth is open: teeth show
    photo = torch.from_numpy(face.crop).permute(2, 0, 1).int()
    drawn, kept = (
        to_uint8(model.render_sequence(reference, points, points[None], mouth_from_photo=flag))[0].int()
        for flag in (False, True)
    )
    assert (drawn - photo).abs()[:, inside].float().mean() > 10  # the U-Net paints over the teeth
    assert (kept - photo).abs()[:, inside].float().mean() < 1  # the photo's own pixels stay


@pytest.mark.slow
def test_generate_mouth_from_photo_keeps_the_smile_from_the_command_line(tmp_path):
    """The released models end to end, with and without `--mouth-from-photo`: the same length, and
    the kept video's mouth stays closer to the photo's."""
    import cv2

    from talkface.cli import main
    from tests.helpers.media_factory import tone

    speech = write_audio_file(tmp_path / "speech.wav", tone(1.0, 16000, 200.0), 16000)
    cv2.imwrite(str(tmp_path / "smile.png"), cv2.cvtColor(astronaut_face(256), cv2.COLOR_RGB2BGR))
    args = ["generate", "--image", str(tmp_path / "smile.png"), "--audio", str(speech), "--quiet"]
    assert main([*args, "--out", str(tmp_path / "plain.mp4")]) == 0
    assert main([*args, "--out", str(tmp_path / "kept.mp4"), "--mouth-from-photo"]) == 0
    plain, kept = (read_video(tmp_path / name).frames.astype(float) for name in ("plain.mp4", "kept.mp4"))
    photo = astronaut_face(256).astype(float)
    assert len(plain) == len(kept) == 25
    rows, cols = slice(122, 152), slice(90, 150)  # the astronaut's smile in the 256 px photo (dlib: 96-145, 127-145)
    kept_change = abs(kept[:, rows, cols] - photo[rows, cols]).mean()
    assert kept_change < abs(plain[:, rows, cols] - photo[rows, cols]).mean()
