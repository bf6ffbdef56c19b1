"""Stage 1 as an ensemble (`model.init_args.members`): the mean, streaming, training, export."""

from __future__ import annotations

import pytest
import torch

from lightning_modules import LandmarkModule
from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.generation.checkpoints import load_stage
from talkface.networks.audio_to_landmarks import AudioToLandmarks
from talkface.networks.landmark_ensemble import LandmarkEnsemble
from talkface.networks.landmark_stream import LandmarkStream
from tests.helpers.cli import data_overrides, small_model


def ensemble(members: int = 3, mouth_rest: bool = True) -> LandmarkEnsemble:
    torch.manual_seed(0)
    networks = [AudioToLandmarks(80, 32, 32, 2, "lstm") for _ in range(members)]
    for network in networks:  # a fresh decoder predicts no motion at all
        torch.nn.init.normal_(network.decoder[-1].weight, std=0.1)
    return LandmarkEnsemble(networks, mouth_rest=mouth_rest).eval()


def test_the_prediction_is_the_members_mean_plus_the_mouth_rest():
    model = ensemble()
    model.mouth_rest.weight.normal_(std=0.1)
    windows, identity = torch.randn(2, 12, 28, 80), 0.5 + 0.1 * torch.randn(2, 68, 2)
    with torch.no_grad():
        each = torch.stack([member(windows, identity)["landmarks"] for member in model.members])
        got = model(windows, identity)["landmarks"]
    assert (each[0] - each[1]).abs().max() > 1e-3  # the members differ
    assert torch.allclose(got, each.mean(dim=0) + model.mouth_rest(identity)[:, None], atol=1e-6)


def test_an_ensemble_streams_exactly_like_one_pass():
    model = ensemble()
    model.mouth_rest.bias.normal_(std=0.01)
    windows, identity = torch.randn(1, 40, 28, 80), 0.5 + 0.1 * torch.randn(1, 68, 2)
    with torch.no_grad():
        whole = model(windows, identity)["landmarks"][0]
    stream = LandmarkStream(model, identity[0])
    streamed = torch.cat([stream.push(windows[0, i : i + 9]) for i in range(0, 40, 9)] + [stream.finish()])
    assert torch.allclose(streamed, whole, atol=1e-5)


def test_members_are_checked():
    with pytest.raises(ValueError, match="at least 2 members"):
        LandmarkEnsemble([AudioToLandmarks(80, 32, 32, 2)])
    with pytest.raises(TalkfaceError, match="members"):
        LandmarkModule(num_words=3, members=0)


def test_each_member_trains_on_its_own_loss():
    module = LandmarkModule(num_words=3, hidden=32, audio_dim=32, layers=1, members=2)
    batch = {
        "audio_windows": torch.randn(2, 6, 28, 80),
        "identity_landmarks": 0.5 + 0.1 * torch.randn(2, 68, 2),
        "landmarks": 0.5 + 0.1 * torch.randn(2, 6, 68, 2),
        "word": torch.tensor([0, 2]),
        "word_mask": torch.ones(2, 6),
    }
    loss = module.training_step(batch, 0)
    separate = [module.losses(module.run(batch, network=n), batch, 0)[0] for n in module.networks]
    assert torch.allclose(loss, sum(separate) / 2)
    loss.backward()
    for member in module.generator.members:
        assert member.decoder[-1].weight.grad.abs().sum() > 0


def test_a_single_network_keeps_its_weight_names():
    """members: 1 is the model as before: the released file and every older checkpoint load."""
    model, _ = load_stage("talkface/weights/landmark_real.safetensors", LandmarkModule)
    assert isinstance(model.generator, AudioToLandmarks) and model.hparams.members == 1


@pytest.mark.slow
def test_an_ensemble_trains_exports_and_loads(tiny_prepared, tmp_path):
    code = main(
        [
            "fit",
            "-c",
            "landmark/sample",
            *data_overrides(tiny_prepared, tmp_path),
            *small_model("landmark"),
            "--model.init_args.members",
            "2",
            "--model.init_args.mouth_rest_ridge",
            "0.01",
            "--trainer.max_epochs",
            "1",
        ]
    )
    assert code == 0
    checkpoint = next(tmp_path.rglob("last.ckpt"))
    release = tmp_path / "ensemble.safetensors"
    assert main(["export", str(checkpoint), "--out", str(release), "--fp16"]) == 0
    model, _ = load_stage(release, LandmarkModule)
    assert isinstance(model.generator, LandmarkEnsemble) and len(model.generator.members) == 2
    assert model.generator.mouth_rest.weight.abs().sum() > 0  # fitted once, on the mean
