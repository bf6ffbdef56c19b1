"""The loss registry and the stage-1 terms."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from lightning_modules import LandmarkModule
from losses import LOSS_REGISTRY, LossComposer, LossTerm, build_loss, register_loss, registered_names
from talkface.errors import TalkfaceError
from tests.helpers.real_data import needs_corpus

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


# ---- the sync-expert term (stage 2, issue 14)
def sync_batch(clips: int = 2, frames: int = 8, size: int = 128) -> dict:
    generator = torch.Generator().manual_seed(2)
    landmarks = 0.3 + 0.4 * torch.rand(clips, 1, 68, 2, generator=generator)
    landmarks = landmarks + 0.01 * torch.randn(clips, frames, 68, 2, generator=generator)
    video = torch.randint(0, 256, (clips, frames, 3, size, size), dtype=torch.uint8, generator=generator)
    return {
        "frames": video,
        "landmarks": landmarks,
        "reference_frame": video[:, 0].clone(),
        "reference_landmarks": landmarks[:, 0].clone(),
        "audio_windows": torch.randn(clips, frames, 28, 80, generator=generator) - 5,
    }


def test_the_sync_expert_term_trains_the_generator_through_a_frozen_expert():
    from lightning_modules import FaceGenModule

    torch.manual_seed(0)
    losses = {"sync": {"class_path": "sync_expert", "init_args": {"weight": 1.0}}}
    module = FaceGenModule(base_channels=4, frames_per_clip=6, losses=losses).train()
    expert = module.losses.terms["sync"]._network
    assert "audio_windows" in module.data_fields and "audio_windows" not in FaceGenModule.data_fields
    assert not expert.training and not any(p.requires_grad for p in expert.parameters())
    assert not any("expert" in key for key in module.state_dict())  # never saved with the generator
    batch = sync_batch()
    pairs = module._training_pairs(batch)
    starts = [pairs["target_landmarks"][i * 6] for i in range(2)]
    for clip, start in enumerate(starts):  # each clip's targets are a run of consecutive frames, in order
        first = int((batch["landmarks"][clip] == start).all(-1).all(-1).nonzero()[0])
        assert torch.equal(
            pairs["target_landmarks"][clip * 6 : clip * 6 + 6], batch["landmarks"][clip, first : first + 6]
        )
        assert torch.equal(pairs["audio_windows"][clip], batch["audio_windows"][clip, first : first + 6])
    fake = module(pairs["reference"], pairs["reference_landmarks"], pairs["target_landmarks"])
    total, terms = module.losses({"image": fake}, pairs)
    assert 0 <= terms["sync"].item() <= 2
    total.backward()
    gradients = [p.grad for p in module.generator.parameters() if p.grad is not None]
    assert gradients and sum(g.abs().sum().item() for g in gradients) > 0
    assert all(p.grad is None for p in expert.parameters())
    running = [b.clone() for b in expert.buffers()]
    module.train()
    module(pairs["reference"], pairs["reference_landmarks"], pairs["target_landmarks"])
    module.losses({"image": fake.detach()}, pairs)
    assert not expert.training and all(torch.equal(a, b) for a, b in zip(running, expert.buffers(), strict=True))

    contrastive = build_loss({"class_path": "sync_expert", "init_args": {"mode": "contrastive"}})
    assert torch.isfinite(contrastive({"image": fake.detach()}, pairs))


def test_the_sync_expert_term_needs_runs_of_five_frames_and_the_experts_features():
    from lightning_modules import FaceGenModule

    losses = {"sync": {"class_path": "sync_expert"}}
    with pytest.raises(TalkfaceError, match="frames_per_clip to 5 or more"):
        FaceGenModule(base_channels=4, losses=losses)  # frames_per_clip 2
    with pytest.raises(TalkfaceError, match="mode must be one of"):
        build_loss({"class_path": "sync_expert", "init_args": {"mode": "sideways"}})
    term = build_loss("sync_expert")
    batch = sync_batch(frames=5)
    batch["audio_windows"] = batch["audio_windows"][..., :40]
    with pytest.raises(TalkfaceError, match="hears 80 audio features per row, the data has 40"):
        term({"image": torch.zeros(10, 3, 128, 128)}, batch)


@needs_corpus()
def test_the_sync_expert_term_is_lower_in_sync_than_off_sync_on_a_real_clip():
    """The released expert on the real frames of an unseen speaker (as if generated): the loss with
    the clip's own sound is below the loss with the sound 6 frames late or early."""
    from talkface.audio.features import compute_features
    from talkface.sync.measure import track_face
    from tests.test_sync import test_clips

    track = track_face(test_clips()[0], 128)
    term = build_loss("sync_expert")
    run = 8
    config, length = term._features, (len(track.frames) - 12) // run * run
    features = compute_features(track.audio, len(track.frames), config)
    windows = features.unfold(0, config.window, config.steps_per_frame)[: len(track.frames)].transpose(1, 2)
    image = track.frames[6 : 6 + length].float() / 127.5 - 1
    losses = {}
    for shift in (-6, 0, 6):
        heard = windows[6 + shift : 6 + shift + length].reshape(length // run, run, *windows.shape[1:])
        with torch.no_grad():
            losses[shift] = term({"image": image}, {"audio_windows": heard}).item()
    assert losses[0] < losses[6] and losses[0] < losses[-6], losses


def test_the_sync_expert_piece_adds_the_term_to_a_generator_recipe(tmp_path):
    from lightning_modules import FaceGenModule
    from talkface.recipes import load_composed

    recipe = tmp_path / "real_with_sync.yaml"
    recipe.write_text("defaults: [generator/real, losses/generator/sync_expert]\n")
    init = load_composed(recipe)["model"]["init_args"]
    assert list(init["losses"]) == ["reconstruction", "adversarial", "feature_matching", "sync_expert"]
    assert init["losses"]["adversarial"]["init_args"]["start_step"] == 1000  # the recipe's own settings stay
    assert init["frames_per_clip"] == 6
    module = FaceGenModule(**{**init, "base_channels": 4})
    assert module.consecutive and "audio_windows" in module.data_fields
