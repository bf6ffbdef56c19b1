"""Stage 1's mouth gain (talkface/networks/mouth_motion.py): the transform, its stream, where it
applies (inference, never training) and how generate and evaluate take it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_modules import LandmarkModule
from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.faces import get_extractor
from talkface.faces.layout import INNER_LIPS, MOUTH
from talkface.generation import generate
from talkface.media import read_video
from talkface.networks.mouth_motion import MouthMotionStream, amplify_mouth, windowed_mean
from tests.helpers.cli import generate_args
from tests.helpers.media_factory import astronaut_face, tone, write_audio_file
from tests.helpers.untrained import untrained_inputs


def talking(frames: int, seed: int = 0) -> torch.Tensor:
    """(frames, 68, 2) landmarks whose lower lip moves up and down around a resting face."""
    generator = torch.Generator().manual_seed(seed)
    points = 0.5 + 0.1 * torch.randn(68, 2, generator=generator)
    points = points[None].repeat(frames, 1, 1)
    lower = [i for i in MOUTH if i in (55, 56, 57, 58, 59, 65, 66, 67)]
    points[:, lower, 1] += 0.02 * torch.sin(torch.arange(frames) * 0.9)[:, None]
    return points + 0.001 * torch.randn(frames, 68, 2, generator=generator)


@pytest.mark.parametrize("frames", [3, 29])
@pytest.mark.parametrize("chunks", [[22, 50, 28], [1] * 100, [100], [3, 97], [14, 1, 85]])
def test_the_stream_gives_the_whole_clip_result(frames, chunks):
    points = talking(100)
    whole = amplify_mouth(points, 1.4, frames)
    stream = MouthMotionStream(1.4, frames)
    parts, start = [], 0
    for size in chunks:
        parts.append(stream.push(points[start : start + size]))
        start += size
    parts.append(stream.finish())
    assert sum(len(part) for part in parts[:-1]) <= 100 - frames // 2  # it waits for its look-ahead
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6)


def test_the_gain_scales_the_mouth_about_its_local_mean_and_leaves_the_rest():
    points = talking(120)
    amplified = amplify_mouth(points, 1.5, 29)
    assert torch.equal(amplified[:, : MOUTH.start], points[:, : MOUTH.start])
    opening = points[:, INNER_LIPS[6], 1] - points[:, INNER_LIPS[2], 1]
    amplified_opening = amplified[:, INNER_LIPS[6], 1] - amplified[:, INNER_LIPS[2], 1]
    middle = slice(20, 100)  # the window is whole there
    ratio = amplified_opening[middle].std() / opening[middle].std()
    assert 1.4 < ratio < 1.6
    # The mouth does not drift: its mean over the clip moves far less than its motion grew.
    drift = (amplified[:, MOUTH].mean(dim=0) - points[:, MOUTH].mean(dim=0)).abs().max()
    assert drift < 0.1 * (amplified_opening - opening).abs().max()
    assert amplify_mouth(points, 1.0, 29) is points  # no gain, no copy


def test_the_windowed_mean_is_truncated_at_the_clip_ends():
    points = torch.randn(10, 20, 2)
    mean = windowed_mean(points, 5)
    assert torch.allclose(mean[0], points[0:3].mean(dim=0), atol=1e-6)
    assert torch.allclose(mean[5], points[3:8].mean(dim=0), atol=1e-6)
    assert torch.allclose(mean[9], points[7:10].mean(dim=0), atol=1e-6)


def small_stage_one(**kwargs) -> LandmarkModule:
    model = LandmarkModule(num_words=4, audio_dim=16, hidden=16, layers=1, detector_hidden=8, **kwargs)
    torch.nn.init.normal_(model.generator.decoder[-1].weight, std=0.5)  # a mouth that moves
    return model


def test_stage_one_applies_the_gain_at_inference_and_never_in_training():
    torch.manual_seed(0)
    model = small_stage_one(mouth_gain=1.8, mouth_gain_frames=9)
    windows, identity = torch.randn(2, 30, 28, 80), torch.rand(2, 68, 2)
    truth = identity[:, None].repeat(1, 30, 1, 1)
    batch = {"audio_windows": windows, "identity_landmarks": identity, "landmarks": truth}
    model.eval()
    with torch.no_grad():
        raw = model.generator(windows, identity)["landmarks"]
        assert torch.allclose(model(windows, identity), amplify_mouth(raw, 1.8, 9))
        assert torch.allclose(model.run(batch)["landmarks"], amplify_mouth(raw, 1.8, 9))  # validation, test
        model.train()  # (batch norm then normalises with the batch's own statistics)
        predicted = model.generator(windows, identity)["landmarks"]
        assert torch.allclose(model.run(batch)["landmarks"], predicted)  # the loss sees what the network predicts
        assert not torch.allclose(predicted, amplify_mouth(predicted, 1.8, 9))


def test_bad_gains_are_refused_in_one_line():
    with pytest.raises(TalkfaceError, match="mouth_gain must be from 1 to 3"):
        small_stage_one(mouth_gain=0.5)
    with pytest.raises(TalkfaceError, match="mouth_gain_frames must be an odd"):
        small_stage_one(mouth_gain=1.5, mouth_gain_frames=10)
    with pytest.raises(TalkfaceError, match="--mouth-gain"):
        small_stage_one().set_mouth_gain(math.nan)


def test_generate_takes_the_gain_per_call_without_changing_the_model(tmp_path):
    """The released stage 1 (a moving mouth): a larger gain moves only the mouth region."""
    from talkface.generation.checkpoints import load_stage
    from talkface.weights import released_checkpoints

    landmark, generator = released_checkpoints()
    stage_one, _ = load_stage(landmark, LandmarkModule)
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * np.arange(32000) / 16000)  # four a second
    audio = write_audio_file(tmp_path / "speech.wav", tone(2.0, 16000, 180.0) * syllables, 16000)
    photo = astronaut_face(256)
    videos, own = {}, stage_one.hparams.mouth_gain
    for gain in (1.0, 2.5):
        out = tmp_path / f"gain_{gain}.mp4"
        result = generate(photo, audio, stage_one, generator, out, mouth_gain=gain)
        assert result.frames == 50
        videos[gain] = read_video(out).frames.astype(np.float32)
    assert stage_one.hparams.mouth_gain == own  # a per-call setting: the loaded model is untouched
    change = np.abs(videos[2.5] - videos[1.0]).mean(axis=(0, 3))  # (H, W), levels
    left, top, right, bottom = get_extractor("dlib").detect(photo)[0]
    width, height = right - left, bottom - top
    mouth = np.zeros_like(change, dtype=bool)
    mouth[int(top + 0.6 * height) : int(bottom), int(left + 0.25 * width) : int(right - 0.25 * width)] = True
    assert change[mouth].mean() > 2.0  # the mouth moves differently
    assert change[mouth].mean() > 2.5 * change[~mouth].mean()  # elsewhere: the warp's tails, the encoder's noise


@pytest.mark.parametrize("value", ["0.5", "4", "nan"])
def test_the_cli_refuses_a_bad_gain_before_any_work(value, tmp_path, capsys):
    inputs = untrained_inputs(tmp_path)
    assert main(generate_args(inputs, tmp_path / "o.mp4") + ["--mouth-gain", value]) == 2
    error = capsys.readouterr().err.strip()
    assert "--mouth-gain" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()


def test_export_bakes_a_gain_into_a_release_and_keeps_the_weights(tmp_path, capsys):
    from talkface.generation.checkpoints import load_model

    inputs = untrained_inputs(tmp_path)
    out = tmp_path / "louder.safetensors"
    assert main(["export", str(inputs["landmark"]), "--mouth-gain", "1.3", "--out", str(out)]) == 0
    before, after = load_model(inputs["landmark"], option="").model, load_model(out, option="").model
    assert before.hparams.mouth_gain == 1.0 and after.hparams.mouth_gain == 1.3
    exported = after.generator.state_dict()
    for name, value in before.generator.state_dict().items():
        assert torch.equal(value, exported[name]), name
    capsys.readouterr()
    refused = tmp_path / "generator.safetensors"
    assert main(["export", str(inputs["generator"]), "--mouth-gain", "1.3", "--out", str(refused)]) == 2
    error = capsys.readouterr().err.strip()
    assert "only stage 1 has a mouth gain" in error and len(error.splitlines()) == 1
    assert not refused.exists()


def test_evaluate_refuses_a_bad_gain_in_one_line(tmp_path, capsys):
    inputs = untrained_inputs(tmp_path)
    args = ["evaluate", "--data", str(tmp_path), "--landmark", str(inputs["landmark"]), "--mouth-gain", "0"]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("--mouth-gain 0.0: give a gain from 1 (as predicted) to 3") and len(error.splitlines()) == 1
