"""Mouth-opening loss: the predicted mouth must open and close when the real one does, as wide.

Landmark reconstruction alone lets stage 1 hedge on real speech: the safest guess for a mouth
it is unsure of is a half-open one that barely moves (on unseen speakers the prediction moved
half as much as the truth). This term scores the mouth opening (inner-lip gap over mouth width,
the quantity the mouth-opening correlation metric measures) per clip: one minus the Pearson
correlation with the real opening (timing, free of scale), plus the squared difference of the
two standard deviations (amplitude), in units of the opening itself.
"""

from __future__ import annotations

import torch

from losses.base import LossTerm
from losses.registry import register_loss
from talkface.metrics.mouth_opening import mouth_opening

MIN_REAL_STD = 0.005  # clips whose real opening varies less (a closed, silent mouth) say nothing about timing


@register_loss("mouth_opening")
class MouthOpening(LossTerm):
    """(1 - corr) of predicted and real mouth opening per clip, plus the amplitude mismatch."""

    batch_fields = ("landmarks",)
    output_fields = ("landmarks",)

    def __init__(self, weight: float = 1.0, amplitude_weight: float = 100.0, start_step: int = 0) -> None:
        """
        Args:
            weight: multiplies the term in the total loss.
            amplitude_weight: weight of (std predicted - std real)² of the opening relative to
                the correlation part (openings vary by ~0.05, so 100 puts a 100 % amplitude
                error near 0.25).
            start_step: the term joins the total from this global step on.
        """
        super().__init__(weight, start_step)
        self.amplitude_weight = amplitude_weight

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        predicted = mouth_opening(outputs["landmarks"].float())  # (B, T)
        real = mouth_opening(batch["landmarks"].float())
        predicted = predicted - predicted.mean(dim=1, keepdim=True)
        real = real - real.mean(dim=1, keepdim=True)
        std_predicted = predicted.pow(2).mean(dim=1).add(1e-8).sqrt()
        std_real = real.pow(2).mean(dim=1).add(1e-8).sqrt()
        correlation = (predicted * real).mean(dim=1) / (std_predicted * std_real)
        moving = (std_real > MIN_REAL_STD).float()
        timing = ((1 - correlation) * moving).sum() / moving.sum().clamp_min(1)
        amplitude = (std_predicted - std_real).pow(2).mean()
        return timing + self.amplitude_weight * amplitude
