"""The base of every loss term: a weighted, optionally delayed, nn.Module."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class LossTerm(nn.Module):
    """One term of a training objective.

    Subclasses implement `compute(outputs, batch)` returning an *unweighted* scalar, and declare
    which batch fields and model outputs they read, so a module can check its data and outputs
    before training starts instead of failing with a KeyError mid-epoch.
    """

    name: ClassVar[str] = ""  # set by @register_loss
    batch_fields: ClassVar[tuple[str, ...]] = ()
    output_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, weight: float = 1.0, start_step: int = 0) -> None:
        """
        Args:
            weight: multiplies the term in the total loss; 0 switches it off (it is then not
                computed at all).
            start_step: the term joins the total from this global step on (e.g. after the
                other terms have warmed the model up).
        """
        super().__init__()
        self.weight = float(weight)
        self.start_step = int(start_step)

    def active(self, step: int) -> bool:
        return self.weight != 0.0 and step >= self.start_step

    def attach(self, module: nn.Module) -> None:
        """Called once by the LightningModule that owns this term, before training: a term with
        parameters of its own can size them from the model here (e.g. its embedding width)."""

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        return self.compute(outputs, batch)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, start_step={self.start_step}"
