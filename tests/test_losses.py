"""The loss registry and the stage-1 terms."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from lightning_modules import LandmarkModule
from losses import LOSS_REGISTRY, LossComposer, LossTerm, build_loss, register_loss, registered_names
from talkface.errors import TalkfaceError

STAGE_ONE_TERMS = [
    "landmark_reconstruction",
    "temporal_residual",
    "word_semantic",
    "word_detector",
    "audio_word",
    "audio_landmark_sync",
    "mouth_opening",
]


def tiny_module(losses: dict) -> LandmarkModule:
    torch.manual_seed(0)
    return LandmarkModule(
        num_words=5, feature_dim=16, audio_dim=32, hidden=32, layers=1, detector_hidden=16, losses=losses
    )


def random_batch(batch: int = 3, frames: int = 9) -> dict:
    generator = torch.Generator().manual_seed(1)
    base = 0.3 + 0.4 * torch.rand(batch, 1, 68, 2, generator=generator)
    landmarks = base + 0.01 * torch.randn(batch, frames, 68, 2, generator=generator)
    return {
        "audio_windows": torch.randn(batch, frames, 8, 16, generator=generator),
        "identity_landmarks": landmarks[:, 0].clone(),
        "landmarks": landmarks,
        "word": torch.tensor([0, 3, -1])[:batch],
        "word_mask": torch.ones(batch, frames),
    }


def grads_by_part(module: LandmarkModule, loss: torch.Tensor) -> dict[str, bool]:
    module.zero_grad()
    loss.backward()
    parts = {"generator": module.generator, "detector": module.word_detector, "loss": module.losses}
    return {
        name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
        for name, part in parts.items()
    }


def test_built_in_terms_are_registered():
    assert set(STAGE_ONE_TERMS) <= set(registered_names())


@pytest.mark.parametrize(
    "name, reaches",
    [
        ("landmark_reconstruction", {"generator"}),
        ("temporal_residual", {"generator"}),
        ("word_semantic", {"generator"}),  # the detector's weights are detached for this term
        ("word_detector", {"detector"}),
        ("audio_word", {"generator", "detector"}),
        ("audio_landmark_sync", {"generator", "loss"}),
        ("mouth_opening", {"generator"}),
    ],
)
def test_each_term_is_a_finite_scalar_whose_gradient_reaches_what_it_should(name, reaches):
    module = tiny_module({name: {"class_path": name}})
    # Move the output away from the zero-initialised "identity" start so every term has signal.
    torch.nn.init.normal_(module.generator.decoder[-1].weight, std=0.1)
    batch = random_batch()
    total, terms = module.losses(module.run(batch), batch, step=0)
    assert total.ndim == 0 and torch.isfinite(total) and set(terms) == {name}
    got = grads_by_part(module, total)
    assert {part for part, flows in got.items() if flows} == reaches


@pytest.mark.parametrize("name", STAGE_ONE_TERMS)
def test_weight_zero_adds_nothing(name):
    batch = random_batch()
    base = {"reconstruction": {"class_path": "landmark_reconstruction"}}
    module = tiny_module({**base, "extra": {"class_path": name, "init_args": {"weight": 0.0}}})
    reference = tiny_module(base)
    reference.load_state_dict(module.state_dict(), strict=False)
    with_zero, terms = module.losses(module.run(batch), batch)
    without, _ = reference.losses(reference.run(batch), batch)
    assert torch.allclose(with_zero, without) and "extra" not in terms


def test_start_step_delays_a_term():
    term = build_loss({"class_path": "temporal_residual", "init_args": {"start_step": 100}})
    composer = LossComposer({"temporal": term})
    batch = random_batch()
    outputs = {"landmarks": batch["landmarks"] + 0.01}
    assert composer(outputs, batch, step=99)[1] == {}
    assert "temporal" in composer(outputs, batch, step=100)[1]


def test_duplicate_registration_raises():
    @register_loss("test_only_duplicate")
    class First(LossTerm):
        pass

    with pytest.raises(ValueError, match="already registered"):

        @register_loss("test_only_duplicate")
        class Second(LossTerm):
            pass

    del LOSS_REGISTRY["test_only_duplicate"]


def test_unknown_name_is_one_line_listing_the_registered_terms():
    with pytest.raises(TalkfaceError) as error:
        build_loss({"class_path": "no_such_loss"})
    message = str(error.value)
    assert "\n" not in message and "no_such_loss" in message and "temporal_residual" in message


def test_a_users_own_term_works_by_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_losses.py").write_text(
        textwrap.dedent(
            """
            from losses import LossTerm

            class MouthOpening(LossTerm):
                batch_fields = ("landmarks",)
                output_fields = ("landmarks",)

                def compute(self, outputs, batch):
                    gap = lambda x: (x[..., 66, 1] - x[..., 62, 1])
                    return (gap(outputs["landmarks"]) - gap(batch["landmarks"])).abs().mean()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = tiny_module({"opening": {"class_path": "my_losses.MouthOpening", "init_args": {"weight": 2.0}}})
    batch = random_batch()
    total, terms = module.losses(module.run(batch), batch)
    assert set(terms) == {"opening"} and torch.isclose(total, 2.0 * terms["opening"])
    sys.modules.pop("my_losses", None)


def test_bad_init_args_are_a_clear_error():
    with pytest.raises(TalkfaceError, match="bad init_args"):
        build_loss({"class_path": "temporal_residual", "init_args": {"nonsense": 1}})


def opening_batch(openings: torch.Tensor) -> torch.Tensor:
    """(B, T) mouth openings → landmarks whose inner lips are that far apart (mouth width 0.2)."""
    landmarks = 0.5 + torch.zeros(*openings.shape, 68, 2)
    landmarks[..., 48, 0], landmarks[..., 54, 0] = 0.4, 0.6
    for upper, lower in ((61, 67), (62, 66), (63, 65)):
        landmarks[..., upper, 1] = 0.5 - openings * 0.1
        landmarks[..., lower, 1] = 0.5 + openings * 0.1
    return landmarks


def test_mouth_opening_term_is_zero_in_sync_and_high_out_of_sync():
    term = build_loss({"class_path": "mouth_opening"})
    real = 0.2 + 0.1 * torch.sin(torch.linspace(0, 6, 25))[None].repeat(2, 1)
    batch = {"landmarks": opening_batch(real)}
    assert term({"landmarks": opening_batch(real)}, batch) < 1e-4  # same timing, same amplitude
    anti = term({"landmarks": opening_batch(0.4 - real)}, batch)
    assert 1.9 < anti < 2.1  # correlation -1, amplitude right
    damped = term({"landmarks": opening_batch(0.2 + (real - 0.2) * 0.5)}, batch)
    assert 0.01 < damped < 0.5  # right timing, half the amplitude: only the amplitude part
