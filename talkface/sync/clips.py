"""Cut what the sync expert sees around each centre frame: 5 lower faces and 0.2 s of features.

Shared by training (batches of prepared windows) and measuring (one whole video), so both feed
the expert the same crop and the same audio rows.
"""

from __future__ import annotations

import torch

from talkface.sync.network import FRAMES, mouth_box

HALF = FRAMES // 2  # frames before (and after) the centre


def centre_frames(num_frames: int) -> torch.Tensor:
    """Every frame with two neighbours on each side: the centres an expert can embed."""
    return torch.arange(HALF, num_frames - HALF)


def mouth_clips(frames: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, S, S) aligned crops, (B, K) centre indices → (B * K, 5, 3, h, w) float in [0, 1].

    uint8 crops (0–255) are scaled to [0, 1]; float crops are taken as already in [0, 1] and pass
    through untouched, so the gradient of generated frames flows (the sync_expert loss)."""
    rows, cols = mouth_box(frames.shape[-1])
    lower = frames[..., rows, cols]  # cut first: only the lower face is converted to float
    offsets = torch.arange(-HALF, HALF + 1, device=centres.device)
    index = (centres[..., None] + offsets).flatten(1)  # (B, K * 5)
    batch = torch.arange(len(frames), device=frames.device)[:, None]
    clips = lower[batch, index]  # (B, K * 5, 3, h, w)
    clips = clips.reshape(-1, FRAMES, *clips.shape[2:])
    return clips if clips.is_floating_point() else clips.float() / 255.0


def audio_clips(windows: torch.Tensor, centres: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T, W, D) feature windows around each frame, (B, K) centres → (B * K, steps, D): the
    middle `steps` rows of each centre's window (the same 0.2 s as its 5 video frames)."""
    start = (windows.shape[2] - steps) // 2
    if start < 0:
        raise ValueError(f"audio windows of {windows.shape[2]} rows are shorter than the expert's {steps}")
    batch = torch.arange(len(windows), device=windows.device)[:, None]
    picked = windows[batch, centres][:, :, start : start + steps]  # (B, K, steps, D)
    return picked.reshape(-1, steps, windows.shape[-1]).float()
