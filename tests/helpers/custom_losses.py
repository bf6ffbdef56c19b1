"""A user's own loss terms, named by dotted path in configs (`tests.helpers.custom_losses.X`):
the loss-contract tests use them the way a user's package would."""

from __future__ import annotations

import torch

from losses import LossTerm


class PhonemeAlignment(LossTerm):
    """Reads a batch field that no talkface module loads."""

    batch_fields = ("phonemes",)
    output_fields = ("landmarks",)

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        return outputs["landmarks"].mean() * batch["phonemes"].float().mean()


class LipWidth(LossTerm):
    """A well-formed term: the predicted mouth width (points 48 and 54) must match the truth."""

    batch_fields = ("landmarks",)
    output_fields = ("landmarks",)

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        def width(x: torch.Tensor) -> torch.Tensor:
            return (x[..., 54, :] - x[..., 48, :]).norm(dim=-1)

        return (width(outputs["landmarks"]) - width(batch["landmarks"])).abs().mean()


class NeedsLipModel(LossTerm):
    """Its __init__ fails the way a term's own set-up can (a bad value, a missing file)."""

    def __init__(self, weight: float = 1.0, lip_model: str = "", start_step: int = 0) -> None:
        super().__init__(weight, start_step)
        if not lip_model:
            raise ValueError("lip_model must name a lip-reading model file")
        self.lip_model = lip_model
