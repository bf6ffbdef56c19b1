"""Phone windows for a long recording, decoded block by block as its audio arrives.

Gives exactly `phone_windows(phone_rows(audio, total_frames))` (talkface/audio/phones.py): the
same blocks from the start of the recording, the last one cut at `total_frames`, and frame t's
window waits only for the block that holds frame t + CONTEXT // 2.
"""

from __future__ import annotations

import numpy as np
import torch

from talkface import FPS, SAMPLE_RATE
from talkface.audio.phones import BLOCK, CONTEXT, PHONES, phone_rows, phone_windows


class PhoneStream:
    """Feed audio with `push`, get (frames, CONTEXT, P) phone windows for every frame now complete."""

    def __init__(self, total_frames: int) -> None:
        self.total_frames = total_frames
        self._block_samples = BLOCK * SAMPLE_RATE // FPS
        self._buffer = np.zeros(0, np.float32)  # audio of the block being filled
        self._rows = np.zeros((0, len(PHONES)), np.float32)  # every decoded row (40 floats a frame)
        self._decoded = 0  # frames decoded so far
        self._next_frame = 0  # next frame to emit a window for

    def push(self, samples: np.ndarray) -> torch.Tensor:
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, np.float32).reshape(-1)])
        while len(self._buffer) >= self._block_samples and self._decoded + BLOCK < self.total_frames:
            self._decode(self._buffer[: self._block_samples], BLOCK)
            self._buffer = self._buffer[self._block_samples :]
        return self._emit(final=False)

    def finish(self) -> torch.Tensor:
        """The remaining windows (the last block padded with silence)."""
        while self._decoded < self.total_frames:
            frames = min(BLOCK, self.total_frames - self._decoded)
            self._decode(self._buffer[: self._block_samples], frames)
            self._buffer = self._buffer[self._block_samples :]
        return self._emit(final=True)

    def _decode(self, audio: np.ndarray, frames: int) -> None:
        self._rows = np.concatenate([self._rows, phone_rows(audio, frames)])
        self._decoded += frames

    def _emit(self, final: bool) -> torch.Tensor:
        half = CONTEXT // 2
        stop = self.total_frames if final else max(self._decoded - half, self._next_frame)
        if stop <= self._next_frame:
            return torch.zeros(0, CONTEXT, len(PHONES))
        windows = phone_windows(self._rows, np.arange(self._next_frame, stop), self.total_frames)
        self._next_frame = stop
        return torch.from_numpy(windows)
