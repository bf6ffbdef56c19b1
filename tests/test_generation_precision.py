"""Stage 2 in bfloat16 for generation: which precision is chosen, that the caller's model is left
alone, and that the frames barely move."""

from __future__ import annotations

import pytest
import torch

from lightning_modules import FaceGenModule
from talkface.errors import TalkfaceError
from talkface.generation import generate
from talkface.generation.checkpoints import load_stage
from talkface.generation.face_input import load_face
from talkface.generation.precision import dtype_for, for_generation, native_bf16
from talkface.networks.pixel_range import to_uint8, to_unit
from talkface.weights import GENERATOR
from tests.helpers.media_factory import astronaut_face
from tests.helpers.untrained import untrained_inputs

CPU = torch.device("cpu")


def test_fp32_and_bf16_are_what_they_say_and_auto_follows_the_hardware():
    assert dtype_for("fp32", CPU) is None
    assert dtype_for("bf16", CPU) == torch.bfloat16
    assert dtype_for("auto", CPU) == (torch.bfloat16 if native_bf16(CPU) else None)


@pytest.mark.parametrize(
    ("precision", "device", "words"),
    [("half", "cpu", "precision must be one of auto, fp32, bf16"), ("bf16", "mps", "bf16 runs on cpu or cuda")],
)
def test_a_precision_that_cannot_run_is_one_line(precision, device, words):
    with pytest.raises(TalkfaceError, match=words):
        dtype_for(precision, torch.device(device))


@pytest.fixture(scope="module")
def released():
    model, _ = load_stage(GENERATOR, FaceGenModule)
    return model


def _first_weight(model: FaceGenModule) -> torch.Tensor:
    return model.generator.stem[0].weight


def test_a_model_the_caller_holds_is_copied_before_it_is_lowered(released):
    before = _first_weight(released).clone()
    lowered = for_generation(released, torch.bfloat16, owned=False)
    assert lowered is not released
    assert _first_weight(released).dtype == torch.float32 and torch.equal(_first_weight(released), before)
    assert lowered.generator.body_dtype() == torch.bfloat16
    assert lowered.generator.to_image.weight.dtype == torch.float32  # the output layers keep theirs
    assert for_generation(lowered, torch.bfloat16, owned=False) is lowered  # already lowered: no copy
    assert for_generation(released, None, owned=False) is released


def test_bf16_frames_stay_within_two_levels_of_fp32(released):
    """The released generator on a real photo with the mouth opening: everything that places pixels
    stays float32, so only the drawn mouth moves, by rounding."""
    face = load_face(astronaut_face(256), int(released.hparams.image_size))
    reference = to_unit(torch.from_numpy(face.crop).permute(2, 0, 1))
    points = torch.from_numpy(face.landmarks)
    targets = points[None].repeat(4, 1, 1)
    for step in range(4):  # the jaw and lower lip drop by up to 6 % of the crop
        targets[step, [5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67], 1] += 0.02 * step
    full = to_uint8(released.render_sequence(reference, points, targets)).int()
    lowered = for_generation(released, torch.bfloat16, owned=False)
    low = to_uint8(lowered.render_sequence(reference, points, targets)).int()
    assert (full[1:] != full[0]).any()  # the mouth did move, so the drawn part is compared
    assert (full - low).abs().max() <= 2


def test_generate_reports_the_precision_it_used(tmp_path):
    inputs = untrained_inputs(tmp_path)
    run = [inputs["image"], inputs["audio"], inputs["landmark"], inputs["generator"]]
    assert generate(*run, tmp_path / "a.mp4", precision="fp32").precision == "fp32"
    assert generate(*run, tmp_path / "b.mp4", precision="bf16").precision == "bf16"
