"""Draw 68 landmarks (crop pixel coordinates) as images a network or a person can read.

- Gaussian heatmaps: one channel per facial part (or per point), float32 in [0, 1]. Stage 2's
  generator and discriminator take them as the landmark condition; they are rendered per frame
  in training, so the renderer is separable and vectorised (no per-point Python loop), and a
  batched torch version renders on the GPU.
- Contour images: the parts drawn as anti-aliased polylines (eyes and lips closed), one colour
  per part — the other conditioning option of stage 2, and what the W&B landmark animations show.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from talkface.faces.layout import (
    BROWS,
    EYES,
    INNER_LIPS,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    NOSE,
    NOSE_BRIDGE,
    NOSE_TIP,
    NOSTRILS,
    NUM_POINTS,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
)

# Facial parts of the 68-point scheme (talkface.faces.layout); each is a contiguous index range.
PARTS: dict[str, range] = {
    "jaw": JAW,
    "brows": BROWS,
    "nose": NOSE,
    "eyes": EYES,
    "outer_lips": OUTER_LIPS,
    "inner_lips": INNER_LIPS,
}

# Polylines for contour drawing: (indices, closed, RGB colour). Brows, eyes and nose are split
# into their left/right or bridge/base strokes so no line joins unrelated points.
CONTOURS: list[tuple[range, bool, tuple[int, int, int]]] = [
    (JAW, False, (255, 255, 255)),  # jaw: white
    (RIGHT_BROW, False, (255, 170, 0)),  # right brow: orange
    (LEFT_BROW, False, (255, 170, 0)),  # left brow
    (NOSE_BRIDGE, False, (0, 200, 255)),  # nose bridge: sky blue
    (range(NOSE_TIP, NOSTRILS.stop), True, (0, 200, 255)),  # nose base (tip + nostrils)
    (RIGHT_EYE, True, (0, 255, 0)),  # right eye: green
    (LEFT_EYE, True, (0, 255, 0)),  # left eye
    (OUTER_LIPS, True, (255, 0, 0)),  # outer lips: red
    (INNER_LIPS, True, (255, 0, 255)),  # inner lips: magenta
]


def _channel_indices(groups: str | Sequence[Sequence[int]]) -> list[np.ndarray] | None:
    """Index arrays per output channel; None means one channel per point."""
    if isinstance(groups, str):
        if groups == "points":
            return None
        if groups == "parts":
            return [np.array(r) for r in PARTS.values()]
        raise ValueError(f"groups must be 'parts', 'points' or a list of index lists, got {groups!r}")
    return [np.asarray(g, dtype=np.int64) for g in groups]


def heatmap_channels(groups: str | Sequence[Sequence[int]] = "parts") -> int:
    """How many channels `render_heatmaps` gives for `groups`."""
    index_groups = _channel_indices(groups)
    return NUM_POINTS if index_groups is None else len(index_groups)


def render_heatmaps(
    points: np.ndarray, size: int, sigma: float = 2.0, groups: str | Sequence[Sequence[int]] = "parts"
) -> np.ndarray:
    """(C, size, size) float32 Gaussian heatmaps in [0, 1], peak 1 at each point.

    `groups`: "parts" (6 channels: jaw, brows, nose, eyes, outer lips, inner lips; a channel is
    the max of its points' Gaussians), "points" (68 channels), or a list of index lists.
    Points outside the crop simply contribute their tail (or nothing).
    """
    points = np.asarray(points, dtype=np.float32)
    coords = np.arange(size, dtype=np.float32)
    # exp(-(dx²+dy²)/2σ²) = exp(-dx²/2σ²) · exp(-dy²/2σ²): two (N, size) tables and one product.
    gx = np.exp(-((coords[None, :] - points[:, 0:1]) ** 2) / (2 * sigma**2))
    gy = np.exp(-((coords[None, :] - points[:, 1:2]) ** 2) / (2 * sigma**2))
    index_groups = _channel_indices(groups)
    if index_groups is None:
        return gy[:, :, None] * gx[:, None, :]
    out = np.empty((len(index_groups), size, size), dtype=np.float32)
    for channel, index in enumerate(index_groups):
        np.max(gy[index, :, None] * gx[index, None, :], axis=0, out=out[channel])
    return out


def render_heatmaps_torch(points, size: int, sigma: float = 2.0, groups: str | Sequence[Sequence[int]] = "parts"):
    """Batched torch version of `render_heatmaps`: (B, 68, 2) -> (B, C, size, size), on points' device."""
    import torch

    points = points.float()
    coords = torch.arange(size, device=points.device, dtype=torch.float32)
    gx = torch.exp(-((coords - points[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, N, size)
    gy = torch.exp(-((coords - points[..., 1:2]) ** 2) / (2 * sigma**2))
    index_groups = _channel_indices(groups)
    if index_groups is None:
        return gy[..., :, None] * gx[..., None, :]
    channels = [
        (gy[:, index, :, None] * gx[:, index, None, :]).amax(dim=1)
        for index in (torch.as_tensor(g, device=points.device) for g in index_groups)
    ]
    return torch.stack(channels, dim=1)


def render_contours(points: np.ndarray, size: int, thickness: int = 1, color: bool = True) -> np.ndarray:
    """The face's parts as anti-aliased polylines on black: (size, size, 3) RGB uint8, one colour
    per part, or (size, size) uint8 white lines when `color` is False."""
    image = np.zeros((size, size, 3) if color else (size, size), dtype=np.uint8)
    # cv2 takes integer points; shift=4 keeps 1/16-pixel precision for smooth, unbiased lines.
    fixed = np.rint(np.asarray(points, dtype=np.float64) * 16).astype(np.int32)
    for index, closed, rgb in CONTOURS:
        line_colour = rgb if color else 255
        cv2.polylines(image, [fixed[list(index)]], closed, line_colour, thickness, cv2.LINE_AA, shift=4)
    return image
