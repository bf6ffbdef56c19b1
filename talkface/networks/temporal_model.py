"""The temporal model of stage 1: LSTM (default), temporal convolutions, or a transformer."""

from __future__ import annotations

import math

import torch
from torch import nn


class TemporalModel(nn.Module):
    """(B, T, input_dim) → (B, T, hidden). `kind`: lstm | conv | transformer."""

    def __init__(
        self, input_dim: int, hidden: int = 256, layers: int = 3, kind: str = "lstm", dropout: float = 0.0
    ) -> None:
        super().__init__()
        if kind not in ("lstm", "conv", "transformer"):
            raise ValueError(f"temporal model must be lstm, conv or transformer, got {kind!r}")
        self.kind = kind
        self.hidden = hidden
        self.layers = layers
        if kind == "lstm":
            self.net = nn.LSTM(
                input_dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
            )
        elif kind == "conv":
            blocks = [nn.Conv1d(input_dim, hidden, 1)]
            for layer in range(layers):
                dilation = 2**layer
                blocks += [nn.ReLU(), nn.Conv1d(hidden, hidden, 3, padding=dilation, dilation=dilation)]
            self.net = nn.Sequential(*blocks)
        else:
            self.inp = nn.Linear(input_dim, hidden)
            layer = nn.TransformerEncoderLayer(
                hidden, nhead=4, dim_feedforward=hidden * 2, dropout=dropout, batch_first=True
            )
            self.net = nn.TransformerEncoder(layer, layers)

    @property
    def stream_context(self) -> int:
        """Frames of input each side of a frame that a chunked run must supply (see LandmarkStream).

        The LSTM carries its state across chunks instead (0). The dilated convolutions see exactly
        2**layers - 1 frames each way. The transformer attends to the whole sequence; it was
        trained on short clips, so half a 29-frame clip each way is what it knows.
        """
        if self.kind == "lstm":
            return 0
        if self.kind == "conv":
            return 2**self.layers - 1
        return 14

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "lstm":
            return self.net(x)[0]
        if self.kind == "conv":
            return self.net(x.transpose(1, 2)).transpose(1, 2)
        x = self.inp(x)
        return self.net(x + _positions(x.shape[1], x.shape[2], x.device))


def _positions(length: int, dim: int, device) -> torch.Tensor:
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    scale = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * scale)
    table[:, 1::2] = torch.cos(position * scale[: dim // 2])
    return table
