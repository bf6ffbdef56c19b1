"""Landmark reconstruction: predicted vs true landmarks, mouth points weighted higher."""

from __future__ import annotations

import torch

from losses.base import LossTerm
from losses.registry import register_loss
from talkface.faces.layout import MOUTH, NUM_POINTS, span


def point_weights(mouth_weight: float, device) -> torch.Tensor:
    weights = torch.ones(NUM_POINTS, device=device)
    weights[span(MOUTH)] = mouth_weight
    return weights / weights.mean()


@register_loss("landmark_reconstruction")
class LandmarkReconstruction(LossTerm):
    """Per-point error between predicted and true landmarks, in pixels, mouth points weighted higher."""

    batch_fields = ("landmarks",)
    output_fields = ("landmarks",)

    def __init__(
        self,
        weight: float = 1.0,
        mouth_weight: float = 3.0,
        norm: str = "l2",
        start_step: int = 0,
        scale: float = 256.0,
    ) -> None:
        """
        Args:
            weight: multiplies the term in the total loss.
            mouth_weight: weight of the 20 mouth points relative to the others (the weights are
                then normalised to mean 1).
            norm: "l2" (squared distance per point) or "l1" (|dx| + |dy|).
            start_step: the term joins the total from this global step on.
            scale: landmarks are normalised to [0, 1]; errors are measured in pixels of a crop
                this size (256: the unit LMD is reported in), which keeps the loss on the same
                scale as the cross-entropy terms it is combined with.
        """
        super().__init__(weight, start_step)
        self.scale = scale
        if norm not in ("l1", "l2"):
            raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
        self.mouth_weight = mouth_weight
        self.norm = norm

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        error = (outputs["landmarks"] - batch["landmarks"]) * self.scale  # (B, T, 68, 2) in pixels
        per_point = error.abs().sum(-1) if self.norm == "l1" else error.pow(2).sum(-1)
        return (per_point * point_weights(self.mouth_weight, error.device)).mean()
