"""Landmark reconstruction: predicted vs true landmarks, mouth points weighted higher."""

from __future__ import annotations

import torch

from losses.base import LossTerm
from losses.registry import register_loss

MOUTH = slice(48, 68)


def point_weights(mouth_weight: float, device) -> torch.Tensor:
    weights = torch.ones(68, device=device)
    weights[MOUTH] = mouth_weight
    return weights / weights.mean()


@register_loss("landmark_reconstruction")
class LandmarkReconstruction(LossTerm):
    batch_fields = ("landmarks",)
    output_fields = ("landmarks",)

    def __init__(
        self, weight: float = 1.0, mouth_weight: float = 3.0, norm: str = "l2", start_step: int = 0, scale: float = 256.0
    ) -> None:
        """`scale`: landmarks are normalised to [0, 1]; errors are measured in pixels of a crop
        this size (256: the unit LMD is reported in), which keeps the loss on the same scale as
        the cross-entropy terms it is combined with."""
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
