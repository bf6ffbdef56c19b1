"""Stage 1's mouth rest (talkface/networks/mouth_rest.py): the fit, its DDP sums, streaming, and the recipe."""

from __future__ import annotations

import logging

import pytest
import torch

from talkface.cli import main
from talkface.networks.audio_to_landmarks import AudioToLandmarks
from talkface.networks.landmark_stream import LandmarkStream
from talkface.networks.mouth_rest import MOUTH, MouthRest, RidgeStatistics, face_shape
from tests.helpers.cli import data_overrides, small_model


def faces(count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.5 + 0.1 * torch.randn(count, 68, 2, generator=generator)


def windows_missing(photos: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
    """Truth and predicted windows whose mean mouth shapes differ by a known linear map of the photo."""
    frames = 6
    predicted = photos[:, None].repeat(1, frames, 1, 1) + 0.01 * torch.randn(len(photos), frames, 68, 2)
    missed = face_shape(photos) @ weight + bias  # (N, 40)
    missed = missed.unflatten(-1, (20, 2))
    missed = missed - missed.mean(dim=1, keepdim=True)  # a shape change: the mouth's centre stays
    truth = predicted.clone()
    truth[:, :, MOUTH] += missed[:, None]
    return truth, predicted


def test_the_fit_recovers_a_linear_map_and_shards_add_up_to_the_whole():
    torch.manual_seed(0)
    photos = faces(400, 0)
    weight, bias = 0.3 * torch.randn(136, 40), 0.01 * torch.randn(40)
    truth, predicted = windows_missing(photos, weight, bias)
    whole = RidgeStatistics()
    whole.add(photos, truth, predicted)
    shards = [RidgeStatistics(), RidgeStatistics()]  # two DDP ranks, summed like strategy.reduce
    shards[0].add(photos[:150], truth[:150], predicted[:150])
    shards[1].add(photos[150:], truth[150:], predicted[150:])
    for total, first, second in zip(whole.tensors(), shards[0].tensors(), shards[1].tensors(), strict=True):
        assert torch.allclose(total, first + second)

    rest = MouthRest()
    rest.fit(whole, ridge=1e-9)
    new_photos = faces(50, 1)
    new_truth, new_predicted = windows_missing(new_photos, weight, bias)
    corrected = new_predicted + rest(new_photos)[:, None]
    before = (new_truth - new_predicted)[:, :, MOUTH].abs().mean()
    after = (new_truth - corrected)[:, :, MOUTH].abs().mean()
    assert after < 0.05 * before
    offset = rest(new_photos)
    assert MOUTH.stop == 68 and offset[:, : MOUTH.start].abs().max() == 0
    assert offset[:, MOUTH].mean(dim=1).abs().max() < 1e-6  # shapes only: the mouth does not move


def test_a_ridge_penalty_pulls_the_map_towards_zero():
    photos = faces(100, 2)
    truth, predicted = windows_missing(photos, torch.randn(136, 40), torch.zeros(40))
    statistics = RidgeStatistics()
    statistics.add(photos, truth, predicted)
    norms = [statistics.solve(ridge).norm() for ridge in (1e-6, 1e-2, 1.0, 100.0)]
    assert all(looser > tighter for looser, tighter in zip(norms, norms[1:], strict=False))
    assert norms[-1] < 0.1 * norms[0]


def test_until_fitted_it_changes_nothing_and_once_fitted_it_streams_exactly():
    torch.manual_seed(0)
    plain = AudioToLandmarks(80, 32, 32, 2, "lstm").eval()
    torch.nn.init.normal_(plain.decoder[-1].weight, std=0.1)
    with_rest = AudioToLandmarks(80, 32, 32, 2, "lstm", mouth_rest=True).eval()
    with_rest.load_state_dict(plain.state_dict(), strict=False)
    windows, identity = torch.randn(1, 50, 28, 80), faces(1, 3)
    with torch.no_grad():
        assert torch.equal(plain(windows, identity)["landmarks"], with_rest(windows, identity)["landmarks"])
        with_rest.mouth_rest.weight.normal_(std=0.1)
        with_rest.mouth_rest.bias.normal_(std=0.01)
        whole = with_rest(windows, identity)["landmarks"][0]
    assert (whole - plain(windows, identity)["landmarks"][0]).abs().max() > 1e-4
    stream = LandmarkStream(with_rest, identity[0])
    streamed = torch.cat([stream.push(windows[0, i : i + 13]) for i in range(0, 50, 13)] + [stream.finish()])
    assert torch.allclose(streamed, whole, atol=1e-5)


@pytest.mark.slow
def test_training_with_a_ridge_fits_the_rest_into_the_last_checkpoint(tiny_prepared, tmp_path):
    # Lightning's logger may not propagate to the root (pytest's capture), and another test in this
    # process (the benchmark's) may have raised its level: listen on it directly, at INFO.
    messages: list[str] = []
    listener = logging.Handler()
    listener.emit = lambda record: messages.append(record.getMessage())
    lightning_logger = logging.getLogger("lightning.pytorch")
    level = lightning_logger.level
    lightning_logger.setLevel(logging.INFO)
    lightning_logger.addHandler(listener)
    try:
        code = main(
            [
                "fit",
                "-c",
                "landmark/sample",
                *data_overrides(tiny_prepared, tmp_path),
                *small_model("landmark"),
                "--model.init_args.mouth_rest_ridge",
                "0.01",
                "--trainer.max_epochs",
                "2",
            ]
        )
    finally:
        lightning_logger.removeHandler(listener)
        lightning_logger.setLevel(level)
    assert code == 0
    state = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)["state_dict"]
    assert state["generator.mouth_rest.weight"].abs().sum() > 0
    assert state["generator.mouth_rest.centre"].abs().sum() > 0
    assert any(message.startswith("Fitted the mouth rest (ridge 0.01) on") for message in messages), messages
