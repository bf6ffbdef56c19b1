"""Stage-1 ensembles: separately trained runs combined by `talkface export A B ... --out`, their mean the
prediction; streaming, checks, and the release round trip."""

from __future__ import annotations

import pytest
import torch

from lightning_modules import LandmarkModule
from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.generation.checkpoints import load_stage
from talkface.generation.release import export_ensemble
from talkface.networks.audio_to_landmarks import AudioToLandmarks
from talkface.networks.landmark_ensemble import LandmarkEnsemble
from talkface.networks.landmark_stream import LandmarkStream
from tests.helpers.cli import data_overrides, small_model


def ensemble(members: int = 3) -> LandmarkEnsemble:
    torch.manual_seed(0)
    networks = [AudioToLandmarks(80, 32, 32, 2, "lstm", mouth_rest=True) for _ in range(members)]
    for network in networks:  # a fresh decoder predicts no motion, and a fresh mouth rest none
        torch.nn.init.normal_(network.decoder[-1].weight, std=0.1)
        network.mouth_rest.bias.normal_(std=0.01)
    return LandmarkEnsemble(networks).eval()


def test_the_prediction_is_the_members_mean():
    model = ensemble()
    windows, identity = torch.randn(2, 12, 28, 80), 0.5 + 0.1 * torch.randn(2, 68, 2)
    with torch.no_grad():
        each = torch.stack([member(windows, identity)["landmarks"] for member in model.members])
        got = model(windows, identity)["landmarks"]
    assert (each[0] - each[1]).abs().max() > 1e-3  # the members differ
    assert torch.allclose(got, each.mean(dim=0), atol=1e-6)


def test_an_ensemble_streams_exactly_like_one_pass():
    model = ensemble()
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


def test_a_single_network_keeps_its_weight_names():
    """members: 1 is the model as before: every older checkpoint and release loads."""
    single = LandmarkModule(num_words=3, hidden=32, audio_dim=32, layers=1)
    assert isinstance(single.generator, AudioToLandmarks)
    assert any(name.startswith("generator.audio_encoder.") for name in single.state_dict())
    paired = LandmarkModule(num_words=3, hidden=32, audio_dim=32, layers=1, members=2)
    assert any(name.startswith("generator.members.1.audio_encoder.") for name in paired.state_dict())


@pytest.fixture(scope="module")
def two_runs(tiny_prepared, tmp_path_factory):
    """Two one-epoch stage-1 runs of one recipe, seeds 0 and 1, with a mouth rest each."""
    runs = []
    for seed in (0, 1):
        root = tmp_path_factory.mktemp(f"seed{seed}")
        args = ["fit", "-c", "landmark/sample", *data_overrides(tiny_prepared, root), *small_model("landmark")]
        args += [
            "--model.init_args.mouth_rest_ridge",
            "0.01",
            "--trainer.max_epochs",
            "1",
            "--seed_everything",
            str(seed),
        ]
        assert main(args) == 0
        runs.append(next(root.rglob("last.ckpt")))
    return runs


@pytest.mark.slow
def test_runs_combine_into_one_release_that_predicts_their_mean(two_runs, tmp_path):
    release = tmp_path / "ensemble.safetensors"
    assert main(["export", *map(str, two_runs), "--out", str(release)]) == 0
    model, _ = load_stage(release, LandmarkModule)
    members = [load_stage(run, LandmarkModule)[0] for run in two_runs]
    assert isinstance(model.generator, LandmarkEnsemble) and model.hparams.members == 2
    windows, identity = torch.randn(1, 10, 28, 80), 0.5 + 0.05 * torch.randn(1, 68, 2)
    with torch.no_grad():
        each = [member(windows, identity) for member in members]
        assert (each[0] - each[1]).abs().max() > 1e-4
        assert torch.allclose(model(windows, identity), (each[0] + each[1]) / 2, atol=1e-6)
    # Each member keeps the mouth rest its own run fitted.
    for member, run in zip(model.generator.members, members, strict=True):
        assert torch.equal(member.mouth_rest.weight, run.generator.mouth_rest.weight)


@pytest.mark.slow
def test_an_ensemble_is_not_trained_further_and_runs_must_match(two_runs, tiny_prepared, tmp_path):
    release = tmp_path / "ensemble.safetensors"
    export_ensemble(two_runs, release)
    with pytest.raises(TalkfaceError, match="already an ensemble of 2"):
        export_ensemble([release, two_runs[0]], tmp_path / "again.safetensors")
    other = tmp_path / "other"
    args = ["fit", "-c", "landmark/sample", *data_overrides(tiny_prepared, other), *small_model("landmark")]
    assert main([*args, "--trainer.max_epochs", "1"]) == 0  # no mouth rest: another recipe
    with pytest.raises(TalkfaceError, match=r"differ in mouth_rest_ridge: combine runs of one recipe"):
        export_ensemble([two_runs[0], next(other.rglob("last.ckpt"))], tmp_path / "mixed.safetensors")
    fit = [*args, "--model.init_args.members", "2", "--trainer.max_epochs", "1"]
    assert main(fit) == 2  # one line: an ensemble is combined, not trained
