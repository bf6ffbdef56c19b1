"""Stage 2: loss terms, the adaptive weight map, and generator/discriminator steps."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_modules import FaceGenModule
from losses import AdaptiveReconstruction, LossComposer, build_loss

SIZE = 64


def tiny_module(losses: dict | None = None) -> FaceGenModule:
    torch.manual_seed(0)
    return FaceGenModule(
        image_size=SIZE,
        base_channels=8,
        depth=3,
        residual_blocks=1,
        discriminator_channels=8,
        discriminator_layers=2,
        losses=losses,
        frames_per_clip=2,
    )


def face_landmarks(batch: int, frames: int, opening: torch.Tensor | None = None) -> torch.Tensor:
    """Rough 68-point faces (normalised) with a mouth whose opening can be set."""
    torch.manual_seed(3)
    base = torch.rand(68, 2) * 0.5 + 0.25
    base[48:68, 0] = torch.linspace(0.4, 0.6, 20)
    base[48:68, 1] = 0.75
    points = base.expand(batch, frames, 68, 2).clone()
    if opening is not None:
        points[..., 56:59, 1] += opening[..., None]  # lower outer lip
        points[..., 65:68, 1] += opening[..., None]  # lower inner lip
    return points


def synthetic_batch(batch: int = 2, frames: int = 4) -> dict:
    generator = torch.Generator().manual_seed(1)
    clip = torch.randint(0, 255, (batch, frames, 3, SIZE, SIZE), generator=generator, dtype=torch.uint8)
    landmarks = face_landmarks(batch, frames, torch.rand(batch, frames, generator=generator) * 0.05)
    return {
        "id": [f"clip{i}" for i in range(batch)],
        "frames": clip,
        "landmarks": landmarks,
        "reference_frame": clip[:, 0].clone(),
        "reference_landmarks": landmarks[:, 0].clone(),
        "audio": torch.zeros(batch, frames * 640),
    }


def generator_outputs(module: FaceGenModule, batch: dict) -> tuple[dict, dict]:
    pairs = module._training_pairs(batch)
    fake = module(pairs["reference"], pairs["reference_landmarks"], pairs["target_landmarks"])
    logits, features = module.discriminator(fake, pairs["target_landmarks"])
    real_features = module.discriminator(pairs["target"], pairs["target_landmarks"])[1]
    return {"image": fake, "fake_logits": logits, "fake_features": features, "real_features": real_features}, pairs


@pytest.mark.parametrize("name", ["adaptive_reconstruction", "l1", "adversarial", "feature_matching"])
def test_each_stage_two_term_is_finite_and_its_gradient_reaches_the_generator(name):
    module = tiny_module({name: {"class_path": name}})
    outputs, pairs = generator_outputs(module, synthetic_batch())
    total, terms = module.losses(outputs, pairs)
    assert total.ndim == 0 and torch.isfinite(total) and set(terms) == {name}
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.generator.parameters())


@pytest.mark.parametrize("mode", ["hinge", "lsgan"])
def test_discriminator_loss_prefers_real_over_fake(mode):
    term = build_loss({"class_path": "adversarial", "init_args": {"mode": mode}})
    confident = term.discriminator_loss(torch.full((2, 1, 4, 4), 2.0), torch.full((2, 1, 4, 4), -2.0))
    fooled = term.discriminator_loss(torch.full((2, 1, 4, 4), -2.0), torch.full((2, 1, 4, 4), 2.0))
    assert confident < fooled


@pytest.mark.parametrize("name", ["adaptive_reconstruction", "l1", "adversarial", "feature_matching"])
def test_stage_two_weight_zero_adds_nothing(name):
    module = tiny_module({"l1": {"class_path": "l1"}})
    outputs, pairs = generator_outputs(module, synthetic_batch())
    base, _ = module.losses(outputs, pairs)
    with_zero = LossComposer({"l1": {"class_path": "l1"}, "extra": {"class_path": name, "init_args": {"weight": 0.0}}})
    total, terms = with_zero(outputs, pairs)
    assert torch.allclose(total, base) and "extra" not in terms


def test_adaptive_weight_map_is_larger_inside_the_mouth():
    term = AdaptiveReconstruction(mouth_weight=4.0, error_weight=1.0)
    batch = synthetic_batch()
    pairs = tiny_module()._training_pairs(batch)
    outputs = {"image": pairs["target"] + 0.1 * torch.randn_like(pairs["target"])}  # error everywhere alike
    weights = term.weight_map(outputs, pairs)[:, 0]
    mouth = pairs["target_landmarks"][:, 48:68] * SIZE
    inside = torch.zeros_like(weights, dtype=torch.bool)
    for index, points in enumerate(mouth):
        (x0, y0), (x1, y1) = points.amin(0).long(), points.amax(0).long()
        inside[index, y0 : y1 + 1, x0 : x1 + 1] = True
    assert weights[inside].mean() > 2 * weights[~inside].mean()
    # ...and where the error is larger, the weight is larger too.
    outputs["image"][..., :8, :8] += 1.0
    assert term.weight_map(outputs, pairs)[:, 0, :8, :8].mean() > weights[:, :8, :8].mean()


class _Snapshots(L.Callback):
    """Parameters just before every optimizer step (manual optimisation calls this hook too)."""

    def __init__(self) -> None:
        self.before: list[dict[str, torch.Tensor]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.before.append({n: p.detach().clone() for n, p in pl_module.named_parameters()})


def test_generator_and_discriminator_steps_change_only_their_own_parameters():
    module = tiny_module()
    snapshots = _Snapshots()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[snapshots],
    )
    trainer.fit(module, train_dataloaders=DataLoader([synthetic_batch()], batch_size=None))
    after = {n: p.detach() for n, p in module.named_parameters()}
    before_d, before_g = snapshots.before  # the discriminator steps first, then the generator

    def changed(a, b):
        return {n for n in a if not torch.equal(a[n], b[n])}

    d_step = changed(before_d, before_g)
    g_step = changed(before_g, after)
    assert d_step and all(n.startswith("discriminator.") for n in d_step)
    assert g_step and all(n.startswith("generator.") for n in g_step)


def test_without_an_adversarial_term_the_discriminator_is_not_trained():
    module = tiny_module({"l1": {"class_path": "l1"}})
    before = {n: p.detach().clone() for n, p in module.discriminator.named_parameters()}
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=DataLoader([synthetic_batch()], batch_size=None))
    assert all(torch.equal(before[n], p) for n, p in module.discriminator.named_parameters())


def test_perceptual_term_without_weights_names_the_file(tmp_path, monkeypatch):
    from talkface.errors import MissingWeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="vgg19-dcbb9e9d.pth"):
        build_loss({"class_path": "perceptual"})
