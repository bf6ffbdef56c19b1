"""Temporal residual loss: frame-to-frame motion of the prediction must match the truth.

Matching consecutive differences (and optionally accelerations) rather than positions keeps the
motion smooth and in step with the audio even where the absolute positions are uncertain.
"""

from __future__ import annotations

import torch

from losses.base import LossTerm
from losses.landmark_reconstruction import point_weights
from losses.registry import register_loss


@register_loss("temporal_residual")
class TemporalResidual(LossTerm):
    """Error between predicted and true frame-to-frame landmark motion, in pixels."""

    batch_fields = ("landmarks",)
    output_fields = ("landmarks",)

    def __init__(
        self,
        weight: float = 1.0,
        second_order_weight: float = 0.0,
        mouth_weight: float = 3.0,
        norm: str = "l2",
        start_step: int = 0,
        scale: float = 256.0,
    ) -> None:
        """
        Args:
            weight: multiplies the term in the total loss.
            second_order_weight: weight of the same error on accelerations (second differences)
                relative to velocities; 0 leaves them out.
            mouth_weight: weight of the 20 mouth points relative to the others.
            norm: "l2" (squared distance per point) or "l1" (|dx| + |dy|).
            start_step: the term joins the total from this global step on.
            scale: errors are measured in pixels of a crop this size, like the reconstruction term.
        """
        super().__init__(weight, start_step)
        if norm not in ("l1", "l2"):
            raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
        self.scale = scale
        self.second_order_weight = second_order_weight
        self.mouth_weight = mouth_weight
        self.norm = norm

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        error = (a - b) * self.scale  # pixels of a `scale` crop, like the reconstruction term
        per_point = error.abs().sum(-1) if self.norm == "l1" else error.pow(2).sum(-1)
        return (per_point * point_weights(self.mouth_weight, error.device)).mean()

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        predicted, target = outputs["landmarks"], batch["landmarks"]
        velocity_pred, velocity_true = predicted.diff(dim=1), target.diff(dim=1)
        loss = self._distance(velocity_pred, velocity_true)
        if self.second_order_weight:
            loss = loss + self.second_order_weight * self._distance(
                velocity_pred.diff(dim=1), velocity_true.diff(dim=1)
            )
        return loss
