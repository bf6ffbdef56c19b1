"""Word detector: a temporal classifier over landmark sequences (500 words on LRW).

It sees landmarks centred per frame and scaled, and their frame differences, so it reads the
shape and the motion of the mouth rather than where the face sits in the crop.
"""

from __future__ import annotations

import torch
from torch import nn

from talkface.faces.layout import JAW, MOUTH

MOUTH_AND_JAW = [*JAW, *MOUTH]


class WordDetector(nn.Module):
    def __init__(self, num_words: int, hidden: int = 128, audio_dim: int | None = None) -> None:
        super().__init__()
        points = len(MOUTH_AND_JAW)
        self.num_words = num_words
        self.encoder = nn.Sequential(
            nn.Conv1d(points * 4, hidden, 3, padding=1),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 3, padding=1),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 3, padding=2, dilation=2),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(hidden, max(num_words, 1))
        # Optional: map the audio embedding into the same space, sharing the classification head.
        self.audio_projection = nn.Linear(audio_dim, hidden) if audio_dim else None

    def embed(self, landmarks: torch.Tensor) -> torch.Tensor:
        """(B, T, 68, 2) → (B, hidden)."""
        points = landmarks[:, :, MOUTH_AND_JAW]
        centred = points - points.mean(dim=2, keepdim=True)
        centred = centred / centred.flatten(2).std(dim=-1, keepdim=True).unsqueeze(-1).clamp_min(1e-4)
        motion = torch.cat([torch.zeros_like(centred[:, :1]), centred.diff(dim=1)], dim=1) * 10.0
        x = torch.cat([centred, motion], dim=-1).flatten(2).transpose(1, 2)  # (B, 4P, T)
        return self.encoder(x).amax(dim=-1)

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(landmarks))

    def classify_audio(self, audio_embedding: torch.Tensor) -> torch.Tensor:
        """(B, T, audio_dim) → (B, num_words) through the shared head."""
        if self.audio_projection is None:
            raise RuntimeError("this word detector was built without an audio projection (audio_dim)")
        return self.head(torch.relu(self.audio_projection(audio_embedding)).amax(dim=1))
