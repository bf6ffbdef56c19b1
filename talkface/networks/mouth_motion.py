"""Amplify the predicted mouth's motion about its own recent mean: stage 1 regresses to the mean.

Trained with a distance loss on voices it does not know, stage 1 hedges: its mouth moves in the
right rhythm but too little, never quite closing and never opening wide. Rendered and
re-detected by dlib, a small opening is lost, so the video's mouth moves even less than the
landmarks. Scaling each frame's mouth points away from their mean over a short centred window
(`frames` frames, truncated at a clip's ends) restores the contrast between open and closed
without moving the mouth or changing its average shape. Chosen on held-out training people
(configs/data/validation/), never on the test people: MODEL_CARD.md gives the figures.

`amplify_mouth` works on whole sequences (evaluation); `MouthMotionStream` gives exactly the same
frames (to float rounding) one chunk at a time (generation), `frames // 2` frames behind its input.
"""

from __future__ import annotations

import math

import torch

from talkface.checks import MOUTH_GAIN_RANGE
from talkface.faces.layout import MOUTH, span

MOUTH_SPAN = span(MOUTH)


def check_mouth_motion(gain: float, frames: int) -> None:
    """Refuse settings that would not be an amplification over a centred window."""
    low, high = MOUTH_GAIN_RANGE
    if not (math.isfinite(gain) and low <= gain <= high):
        raise ValueError(f"mouth_gain must be from {low:g} to {high:g}, got {gain}")
    if int(frames) != frames or frames < 3 or frames % 2 == 0:
        raise ValueError(f"mouth_gain_frames must be an odd whole number of at least 3, got {frames}")


def windowed_mean(points: torch.Tensor, frames: int) -> torch.Tensor:
    """(..., T, P, 2) → the mean over frames t - frames//2 … t + frames//2 that exist, for every t."""
    half = frames // 2
    length = points.shape[-3]
    totals = torch.cumsum(points, dim=-3)
    totals = torch.cat([torch.zeros_like(totals[..., :1, :, :]), totals], dim=-3)  # totals[t] = sum of [0, t)
    index = torch.arange(length, device=points.device)
    start = (index - half).clamp_min(0)
    stop = (index + half + 1).clamp_max(length)
    counts = (stop - start).to(points.dtype)[:, None, None]
    return (totals[..., stop, :, :] - totals[..., start, :, :]) / counts


def amplify_mouth(landmarks: torch.Tensor, gain: float, frames: int) -> torch.Tensor:
    """(..., T, 68, 2) landmarks of whole clips → the same with the mouth's motion scaled by `gain`."""
    if gain == 1.0:
        return landmarks
    mouth = landmarks[..., MOUTH_SPAN, :]
    mean = windowed_mean(mouth, frames)
    out = landmarks.clone()
    out[..., MOUTH_SPAN, :] = mean + gain * (mouth - mean)
    return out


class MouthMotionStream:
    """`push((t, 68, 2))` → the frames now final; `finish()` → the rest: `amplify_mouth` in chunks."""

    def __init__(self, gain: float, frames: int) -> None:
        self.gain, self.frames, self.half = gain, frames, frames // 2
        self._points = torch.zeros(0, 68, 2)  # left context (already emitted) + frames not yet emitted
        self._left = 0  # how many of `_points` are left context

    def push(self, points: torch.Tensor) -> torch.Tensor:
        if self.gain == 1.0:
            return points
        self._points = torch.cat([self._points.to(points), points])
        return self._emit(final=False)

    def finish(self) -> torch.Tensor:
        if self.gain == 1.0 or len(self._points) == self._left:
            return torch.zeros(0, 68, 2)
        return self._emit(final=True)

    def _emit(self, final: bool) -> torch.Tensor:
        total = len(self._points)
        stop = total if final else total - self.half  # frames whose whole right half-window is here
        if stop <= self._left:
            return self._points[:0]
        # Every frame in [left, stop) has its window inside `_points`: the left context holds `half`
        # frames (or the clip's start), and only final frames lack their right half.
        window = self._points if final else self._points[: stop + self.half]
        amplified = amplify_mouth(window, self.gain, self.frames)[self._left : stop]
        keep_from = max(stop - self.half, 0)
        self._points = self._points[keep_from:]
        self._left = stop - keep_from
        return amplified
