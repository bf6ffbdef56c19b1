"""Adversarial losses against the landmark-conditioned discriminator.

Model outputs: `fake_logits` (D on the generated frame, with gradient to the generator),
`fake_features` / `real_features` (D's intermediate maps, for feature matching).
The LightningModule asks the adversarial term for the discriminator's own loss too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losses.base import LossTerm
from losses.registry import register_loss


@register_loss("adversarial")
class Adversarial(LossTerm):
    """The generator's GAN loss; configuring it also switches the discriminator's training on."""

    output_fields = ("fake_logits",)

    def __init__(self, weight: float = 0.01, mode: str = "hinge", start_step: int = 0) -> None:
        """
        Args:
            weight: multiplies the generator's adversarial loss in its total.
            mode: the GAN objective of both networks: "hinge" or "lsgan" (least squares).
            start_step: neither network plays the game before this global step (the generator
                first learns from the reconstruction terms alone).
        """
        super().__init__(weight, start_step)
        if mode not in ("hinge", "lsgan"):
            raise ValueError(f"adversarial mode must be 'hinge' or 'lsgan', got {mode!r}")
        self.mode = mode

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        """The generator's side: make D call the fake real."""
        fake = outputs["fake_logits"]
        if self.mode == "hinge":
            return -fake.mean()
        return (fake - 1).pow(2).mean()

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "hinge":
            return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        return (real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean()


@register_loss("feature_matching")
class FeatureMatching(LossTerm):
    """L1 between the discriminator's features of the generated and the real frame."""

    output_fields = ("fake_features", "real_features")

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        pairs = list(zip(outputs["fake_features"], outputs["real_features"], strict=True))
        return sum((fake - real.detach()).abs().mean() for fake, real in pairs) / max(len(pairs), 1)
