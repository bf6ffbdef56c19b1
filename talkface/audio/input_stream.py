"""Stage 1's inputs for a long recording: feature windows, and phone windows when the model reads them.

The two streams complete frames at different times (feature windows 3 frames behind the audio,
phones a whole decoding block behind), so frames wait here until both inputs exist.
"""

from __future__ import annotations

import numpy as np
import torch

from talkface.audio.features import FeatureConfig
from talkface.audio.phone_stream import PhoneStream
from talkface.audio.streaming import WindowStream


class StageOneInputs:
    """`push(samples)` / `finish()` → (windows (t, W, D), phones (t, CONTEXT, P) or None) for the next t frames."""

    def __init__(self, total_frames: int, config: FeatureConfig, phones: bool) -> None:
        self.windows = WindowStream(total_frames, config)
        self.phones = PhoneStream(total_frames) if phones else None
        self._windows = torch.zeros(0, config.window, config.dim)
        self._phones: torch.Tensor | None = None

    def push(self, samples: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        windows = self.windows.push(samples)
        if self.phones is None:
            return windows, None
        return self._pair(windows, self.phones.push(samples))

    def finish(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        windows = self.windows.finish()
        if self.phones is None:
            return windows, None
        return self._pair(windows, self.phones.finish())

    def _pair(self, windows: torch.Tensor, phones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._windows = torch.cat([self._windows, windows])
        self._phones = phones if self._phones is None else torch.cat([self._phones, phones])
        ready = min(len(self._windows), len(self._phones))
        out = self._windows[:ready], self._phones[:ready]
        self._windows, self._phones = self._windows[ready:], self._phones[ready:]
        return out
