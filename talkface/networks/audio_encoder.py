"""Audio encoder: one embedding per video frame from that frame's window of audio features."""

from __future__ import annotations

import torch
from torch import nn


class AudioEncoder(nn.Module):
    """(B, T, W, D) feature windows → (B, T, E). A 1-D CNN over each window's W feature frames."""

    def __init__(self, feature_dim: int = 80, embed_dim: int = 256, channels: int = 128) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(feature_dim)
        self.net = nn.Sequential(
            nn.Conv1d(feature_dim, channels, 3, padding=1),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(1),
        )
        self.out = nn.Linear(channels, embed_dim)
        self.embed_dim = embed_dim

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        batch, frames, width, dim = windows.shape
        x = self.norm(windows.reshape(batch * frames, width, dim)).transpose(1, 2)  # (BT, D, W)
        return self.out(self.net(x).squeeze(-1)).reshape(batch, frames, -1)
