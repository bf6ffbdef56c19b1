"""Cross-modal temporal synchronisation: audio changes and landmark changes must co-occur.

At every time step the landmark residual (x[t+1] - x[t]) is paired with the audio-embedding
residual of the same step; residuals of the same clip at other steps are the negatives (an
InfoNCE loss). Only a model whose motion is timed with the audio can make the pairs agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losses.base import LossTerm
from losses.registry import register_loss
from talkface.faces.layout import MOUTH, span


@register_loss("audio_landmark_sync")
class AudioLandmarkSync(LossTerm):
    """Contrastive (InfoNCE) pairing of per-step mouth motion with per-step audio change."""

    batch_fields = ()
    output_fields = ("landmarks", "audio_embedding")

    def __init__(
        self,
        weight: float = 0.1,
        embed_dim: int = 64,
        temperature: float = 0.1,
        min_offset: int = 2,
        start_step: int = 0,
    ) -> None:
        """
        Args:
            weight: multiplies the term in the total loss.
            embed_dim: width of the space both motions are projected into.
            temperature: softmax temperature of the InfoNCE logits (lower: sharper).
            min_offset: negatives are at least this many frames away (neighbours look alike).
            start_step: the term joins the total from this global step on.
        """
        super().__init__(weight, start_step)
        self.embed_dim = embed_dim
        self.audio_projection: nn.Module | None = None  # sized from the model in `attach`
        self.landmark_projection = nn.Sequential(
            nn.Linear(2 * len(MOUTH), embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.temperature = temperature
        self.min_offset = min_offset

    def attach(self, module: nn.Module) -> None:
        audio_dim = module.hparams.audio_dim
        self.audio_projection = nn.Sequential(
            nn.Linear(audio_dim, self.embed_dim), nn.ReLU(), nn.Linear(self.embed_dim, self.embed_dim)
        )

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        mouth = outputs["landmarks"][:, :, span(MOUTH)].flatten(2)  # (B, T, 40)
        landmark_motion = F.normalize(self.landmark_projection(mouth.diff(dim=1) * 100.0), dim=-1)
        audio_motion = F.normalize(self.audio_projection(outputs["audio_embedding"].diff(dim=1)), dim=-1)
        logits = landmark_motion @ audio_motion.transpose(1, 2) / self.temperature  # (B, T-1, T-1)
        steps = logits.shape[1]
        offsets = torch.arange(steps, device=logits.device)
        distance = (offsets[:, None] - offsets[None, :]).abs()
        excluded = (distance > 0) & (distance < self.min_offset)
        logits = logits.masked_fill(excluded, float("-inf"))
        targets = offsets.expand(logits.shape[0], steps)
        return F.cross_entropy(logits.reshape(-1, steps), targets.reshape(-1))
