"""Stage-2 pixel losses: plain L1 and the adaptive reconstruction loss.

Model outputs: `image` (B, 3, H, W) in [-1, 1]; batch: `target` (same) and `target_landmarks`
(B, 68, 2) normalised.
"""

from __future__ import annotations

import torch

from losses.base import LossTerm
from losses.registry import register_loss
from talkface.faces.layout import MOUTH, span


def mouth_mask(landmarks: torch.Tensor, size: int, spread: float = 1.5) -> torch.Tensor:
    """(B, 1, size, size) in [0, 1]: a soft ellipse over the mouth, `spread` x its extent."""
    mouth = landmarks[:, span(MOUTH)] * size  # (B, 20, 2) pixels
    centre = mouth.mean(dim=1)  # (B, 2)
    radius = ((mouth.amax(dim=1) - mouth.amin(dim=1)) / 2 * spread).clamp_min(2.0)  # (B, 2)
    axis = torch.arange(size, device=landmarks.device, dtype=landmarks.dtype) + 0.5
    dx = (axis[None, None, :] - centre[:, 0, None, None]) / radius[:, 0, None, None]
    dy = (axis[None, :, None] - centre[:, 1, None, None]) / radius[:, 1, None, None]
    return torch.exp(-2.0 * (dx**2 + dy**2))[:, None].clamp(0, 1)


@register_loss("l1")
class L1(LossTerm):
    """Mean absolute pixel error between the generated and the target frame."""

    batch_fields = ("target",)
    output_fields = ("image",)

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        return (outputs["image"] - batch["target"]).abs().mean()


@register_loss("adaptive_reconstruction")
class AdaptiveReconstruction(LossTerm):
    """Per-pixel L1 whose weights rise where the target's mouth is and where the error is large.

    weight = 1 + mouth_weight * mouth_mask + error_weight * error / mean(error), the error part
    detached (it steers attention, it is not itself minimised) — in the spirit of ATVGnet's
    dynamic pixel-wise loss `|fake - real| * (attention + 0.5)`.
    """

    batch_fields = ("target", "target_landmarks")
    output_fields = ("image",)

    def __init__(
        self,
        weight: float = 1.0,
        mouth_weight: float = 4.0,
        error_weight: float = 1.0,
        mouth_spread: float = 1.5,
        start_step: int = 0,
    ) -> None:
        """
        Args:
            weight: multiplies the term in the total loss.
            mouth_weight: extra pixel weight at the centre of the target's mouth (0: none).
            error_weight: extra pixel weight where the error is large, relative to the image's
                mean error (0: none).
            mouth_spread: size of the soft mouth ellipse, as a multiple of the mouth's extent.
            start_step: the term joins the total from this global step on.
        """
        super().__init__(weight, start_step)
        self.mouth_weight = mouth_weight
        self.error_weight = error_weight
        self.mouth_spread = mouth_spread

    def weight_map(self, outputs: dict, batch: dict) -> torch.Tensor:
        """(B, 1, H, W) weights, mean about 1 + mouth share + error share; no gradient."""
        with torch.no_grad():
            target = batch["target"]
            weights = torch.ones_like(target[:, :1])
            if self.mouth_weight:
                weights = weights + self.mouth_weight * mouth_mask(
                    batch["target_landmarks"], target.shape[-1], self.mouth_spread
                )
            if self.error_weight:
                error = (outputs["image"] - target).abs().mean(dim=1, keepdim=True)
                weights = weights + self.error_weight * error / error.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6)
            return weights

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        weights = self.weight_map(outputs, batch)
        return (weights * (outputs["image"] - batch["target"]).abs()).mean() / weights.mean()
