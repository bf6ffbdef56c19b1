"""The stage-2 networks' pixel convention: images are float in [-1, 1] (the generator ends in
tanh), frames on disk and in batches are uint8 in [0, 255]. These convert between the two."""

from __future__ import annotations

import torch


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1] (on the model's device, so the loader ships bytes)."""
    return frames.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] (values outside are clipped) → uint8 [0, 255], rounded to nearest."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
