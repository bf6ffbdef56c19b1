"""Word accuracy of the word detector: top-1 accuracy over clips that have a word label.

Used on the detector's logits for predicted landmarks (does the generated mouth motion carry the
word?) and for ground-truth landmarks (the ceiling). Clips without a word (folder datasets) carry
label `ignore_index` (-1) and are left out of both the numerator and the denominator.
States are counts reduced by sum, so DDP is exact.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


def word_accuracy_counts(logits: Tensor, labels: Tensor, ignore_index: int = -1) -> tuple[Tensor, Tensor]:
    """(correct, total) over the labelled clips of logits (B, C) and labels (B,)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (B, C) and labels (B,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    labelled = labels != ignore_index
    correct = (logits.argmax(dim=-1) == labels) & labelled
    return correct.sum(), labelled.sum()


def word_accuracy(logits: Tensor, labels: Tensor, ignore_index: int = -1) -> Tensor:
    """Top-1 accuracy over labelled clips (NaN when none is labelled)."""
    correct, total = word_accuracy_counts(logits, labels, ignore_index)
    return correct / total


class WordAccuracy(Metric):
    """Top-1 word accuracy over all labelled clips seen.

    update(logits, labels): logits (B, C), labels (B,) int; label `ignore_index` is skipped.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, ignore_index: int = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ignore_index = ignore_index
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: Tensor, labels: Tensor) -> None:
        correct, total = word_accuracy_counts(logits, labels, self.ignore_index)
        self.correct += correct
        self.total += total

    def compute(self) -> Tensor:
        return self.correct / self.total
