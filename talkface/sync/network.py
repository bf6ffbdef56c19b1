"""The project's lip-sync expert: a mouth-video encoder and an audio encoder into one space.

Each encoder sees 0.2 s around one video frame: the video encoder the lower face of 5 aligned
crops (frames t-2 .. t+2, stacked as channels), the audio encoder the 20 feature rows of the same
0.2 s. Trained so that matching pairs are close (cosine), their embeddings are unit vectors and
the distance between them says how well sound and lips agree.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

FRAMES = 5  # video frames per embedding (0.2 s at 25 fps), as SyncNet
# The lower face inside an aligned crop, as fractions of its side (rows, then columns): from just
# below the nose to below the chin, and the width of the jaw. The alignment is fixed, so a fixed
# box holds the mouth on every frame.
MOUTH_ROWS = (60 / 128, 124 / 128)
MOUTH_COLS = (16 / 128, 112 / 128)


def mouth_box(crop_size: int) -> tuple[slice, slice]:
    """Rows and columns of the lower face in an aligned crop of side `crop_size`."""
    rows = slice(round(MOUTH_ROWS[0] * crop_size), round(MOUTH_ROWS[1] * crop_size))
    cols = slice(round(MOUTH_COLS[0] * crop_size), round(MOUTH_COLS[1] * crop_size))
    return rows, cols


def _block(inputs: int, outputs: int, stride) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class SyncExpertNetwork(nn.Module):
    """(N, 5, C, H, W) lower-face clips and (N, steps, D) audio features → unit embeddings."""

    def __init__(
        self,
        channels: int = 1,
        feature_dim: int = 80,
        audio_steps: int = 20,
        width: int = 32,
        embedding: int = 128,
        crop_size: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels}")
        self.channels = channels
        self.audio_steps = audio_steps
        rows, cols = mouth_box(crop_size)
        height, width_px = rows.stop - rows.start, cols.stop - cols.start
        self.video = nn.Sequential(
            nn.Conv2d(FRAMES * channels, width, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            _block(width, 2 * width, 2),
            _block(2 * width, 4 * width, 2),
            _block(4 * width, 4 * width, 2),
        )
        video_cells = -(-height // 16) * -(-width_px // 16)
        self.dropout = nn.Dropout(dropout)  # before each head (no weights: checkpoints stay the same)
        self.video_head = nn.Linear(4 * width * video_cells, embedding)
        # Audio as a (1, bands, steps) image: halve the bands four times and the time three times.
        self.audio = nn.Sequential(
            _block(1, width, (2, 1)),
            _block(width, 2 * width, 2),
            _block(2 * width, 4 * width, 2),
            _block(4 * width, 4 * width, (2, 1)),
        )
        audio_cells = -(-feature_dim // 16) * -(-audio_steps // 4)
        self.audio_head = nn.Linear(4 * width * audio_cells, embedding)

    def embed_video(self, mouths: torch.Tensor) -> torch.Tensor:
        """(N, 5, C, H, W) float lower faces in [0, 1] → (N, E) unit vectors.

        Each clip is standardised on its own (mean and spread over its pixels), so lighting and
        skin tone matter less than the shape of the mouth."""
        if mouths.shape[2] != self.channels:
            mouths = mouths.mean(dim=2, keepdim=True) if self.channels == 1 else mouths.expand(-1, -1, 3, -1, -1)
        flat = mouths.flatten(1, 2)
        mean = flat.mean(dim=(1, 2, 3), keepdim=True)
        spread = flat.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        features = self.video((flat - mean) / spread)
        return F.normalize(self.video_head(self.dropout(features.flatten(1))), dim=1)

    def embed_audio(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, steps, D) log features → (N, E) unit vectors; the window's mean level is removed
        (a louder or quieter microphone is the same speech)."""
        windows = windows - windows.mean(dim=(1, 2), keepdim=True)
        features = self.audio(windows.transpose(1, 2)[:, None])
        return F.normalize(self.audio_head(self.dropout(features.flatten(1))), dim=1)
