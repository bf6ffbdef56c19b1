"""Semantic losses through the word detector: the landmarks (and the audio) must carry the word."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losses.base import LossTerm
from losses.registry import register_loss


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over clips with a word (label >= 0); 0 (still in the graph) when none has one."""
    valid = labels >= 0
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], labels[valid])


@register_loss("word_semantic")
class WordSemantic(LossTerm):
    """Cross-entropy of the word detector on the *predicted* landmark sequence.

    The module evaluates the detector with its weights detached for this term, so the gradient
    shapes the predicted motion, not the detector.
    """

    batch_fields = ("word",)
    output_fields = ("word_logits_predicted",)

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        return masked_cross_entropy(outputs["word_logits_predicted"], batch["word"])


@register_loss("word_detector")
class WordDetector(LossTerm):
    """Trains the word detector itself on ground-truth landmarks (joint training)."""

    batch_fields = ("word", "landmarks")
    output_fields = ("word_logits_true",)

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        return masked_cross_entropy(outputs["word_logits_true"], batch["word"])


@register_loss("audio_word")
class AudioWord(LossTerm):
    """The word detector's head on the audio embedding, so audio and landmarks share one semantic space."""

    batch_fields = ("word",)
    output_fields = ("word_logits_audio",)

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        return masked_cross_entropy(outputs["word_logits_audio"], batch["word"])
