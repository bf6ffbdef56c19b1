"""Normalised 68-point landmarks -> conditioning images for stage 2, rendered on the fly.

Stage 2's generator and discriminator see landmarks as images (one channel per facial part), and
they render them every step on whatever device the batch is on. Both modes draw each item
(a point for heatmaps, a polyline segment for contours) only inside a small window around it and
merge the windows with a scatter-max: at 128² that is ~100x fewer pixels than evaluating every
item at every pixel, which keeps rendering a few milliseconds per batch on a CPU.

Rendering is not differentiable with respect to the landmarks (stage 2 trains on given landmarks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from talkface.faces.rendering import CONTOURS, PARTS

MODES = ("heatmap", "contour")
N_POINTS = 68


def _point_channels(groups: str | Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """(point index, channel) pairs for heatmaps; a point may light several channels."""
    if isinstance(groups, str):
        if groups == "points":
            return list(range(N_POINTS)), list(range(N_POINTS))
        if groups == "parts":
            index_groups: Sequence[Sequence[int]] = [list(r) for r in PARTS.values()]
        else:
            raise ValueError(f"groups must be 'parts', 'points' or a list of index lists, got {groups!r}")
    else:
        index_groups = groups
    points, channels = [], []
    for channel, group in enumerate(index_groups):
        for point in group:
            if not 0 <= int(point) < N_POINTS:
                raise ValueError(f"landmark index {point} in groups is outside 0..{N_POINTS - 1}")
            points.append(int(point))
            channels.append(channel)
    return points, channels


def _contour_segments() -> tuple[list[int], list[int], list[int]]:
    """(start point, end point, channel) of every polyline segment; channel = facial part (6)."""
    part_of_point = {p: c for c, r in enumerate(PARTS.values()) for p in r}
    starts, ends, channels = [], [], []
    for index, closed, _colour in CONTOURS:
        ids = list(index)
        pairs = list(zip(ids[:-1], ids[1:], strict=False)) + ([(ids[-1], ids[0])] if closed else [])
        for a, b in pairs:
            starts.append(a)
            ends.append(b)
            channels.append(part_of_point[ids[0]])
    return starts, ends, channels


def _splat_max(
    values: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, channel: torch.Tensor, n_channels: int, size: int
) -> torch.Tensor:
    """Merge per-item windows into images by max.

    values (N, n, W, W) at rows ys (N, n, W) and columns xs (N, n, W), all inside the image;
    item j goes to channel[j]. Returns (N, n_channels, size, size).
    """
    n_images = values.shape[0]
    flat = ys.unsqueeze(-1) * size + xs.unsqueeze(-2) + (channel * size * size).view(1, -1, 1, 1)
    out = values.new_zeros(n_images, n_channels * size * size)
    out.scatter_reduce_(1, flat.flatten(1), values.flatten(1), reduce="amax")
    return out.view(n_images, n_channels, size, size)


def _window_origin(low: torch.Tensor, width: int, size: int) -> torch.Tensor:
    """Window start per item, kept inside the image; a window of `width` starting at the
    clamped origin still covers every visible pixel the item can reach."""
    return low.floor().clamp(0, size - width).long()


class LandmarkRenderer(nn.Module):
    """Normalised landmarks (..., 68, 2) in [0, 1] of the crop -> images (..., C, size, size) in [0, 1].

    mode "heatmap": a Gaussian of std `sigma` pixels per point, peak 1, a channel is the max over
      its points (`groups`: "parts" = 6 channels, "points" = 68, or a list of index lists) — the
      same images as `talkface.faces.render_heatmaps_torch`, cut off beyond 4 sigma (< 4e-4).
    mode "contour": the facial parts' polylines (eyes and lips closed), anti-aliased lines
      `thickness` pixels wide, one channel per part (6: jaw, brows, nose, eyes, outer lips,
      inner lips).
    Pixel coordinates are landmarks * size, as the data pipeline normalises them.
    """

    def __init__(
        self,
        size: int = 128,
        mode: str = "heatmap",
        sigma: float = 2.0,
        groups: str | Sequence[Sequence[int]] = "parts",
        thickness: float = 1.0,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"landmark image mode must be one of {MODES}, got {mode!r}")
        if size < 2:
            raise ValueError(f"image size must be at least 2, got {size}")
        if sigma <= 0 or thickness <= 0:
            raise ValueError(f"sigma and thickness must be positive, got sigma={sigma}, thickness={thickness}")
        self.size = int(size)
        self.mode = mode
        self.sigma = float(sigma)
        self.thickness = float(thickness)
        if mode == "heatmap":
            points, channels = _point_channels(groups)
            self.register_buffer("_points", torch.tensor(points), persistent=False)
            self._channels = max(channels) + 1
        else:
            if groups != "parts":
                raise ValueError("contour images always have one channel per facial part: use groups='parts'")
            starts, ends, channels = _contour_segments()
            self.register_buffer("_starts", torch.tensor(starts), persistent=False)
            self.register_buffer("_ends", torch.tensor(ends), persistent=False)
            self._channels = len(PARTS)
        self.register_buffer("_item_channel", torch.tensor(channels), persistent=False)

    @property
    def channels(self) -> int:
        """Number of image channels this renderer produces."""
        return self._channels

    def extra_repr(self) -> str:
        width = f"sigma={self.sigma}" if self.mode == "heatmap" else f"thickness={self.thickness}"
        return f"size={self.size}, mode={self.mode!r}, channels={self.channels}, {width}"

    @torch.no_grad()
    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        if landmarks.ndim < 2 or tuple(landmarks.shape[-2:]) != (N_POINTS, 2):
            raise ValueError(f"landmarks must be (..., {N_POINTS}, 2), got {tuple(landmarks.shape)}")
        lead = landmarks.shape[:-2]
        pixels = landmarks.reshape(-1, N_POINTS, 2).float() * self.size
        if self.mode == "heatmap":
            images = self._heatmaps(pixels)
        else:
            images = self._contours(pixels)
        return images.view(*lead, self.channels, self.size, self.size)

    def as_images(self, landmarks_or_images: torch.Tensor) -> torch.Tensor:
        """Render (..., 68, 2) landmarks, or pass through images already rendered by this
        renderer (..., C, size, size) — so one rendering can be shared by G and D."""
        if tuple(landmarks_or_images.shape[-2:]) == (N_POINTS, 2):
            return self(landmarks_or_images)
        if tuple(landmarks_or_images.shape[-3:]) == (self.channels, self.size, self.size):
            return landmarks_or_images
        raise ValueError(
            f"expected landmarks (..., {N_POINTS}, 2) or landmark images (..., {self.channels}, "
            f"{self.size}, {self.size}), got {tuple(landmarks_or_images.shape)}"
        )

    def _heatmaps(self, pixels: torch.Tensor) -> torch.Tensor:
        size = self.size
        radius = math.ceil(4 * self.sigma)
        width = min(2 * radius + 2, size)  # covers [p - radius, p + radius] from floor(p) - radius
        centres = pixels[:, self._points]  # (N, n, 2)
        origin = _window_origin(centres - radius, width, size)
        offsets = torch.arange(width, device=pixels.device)
        xs = origin[..., 0:1] + offsets  # (N, n, W)
        ys = origin[..., 1:2] + offsets
        gx = torch.exp(-((xs - centres[..., 0:1]) ** 2) / (2 * self.sigma**2))
        gy = torch.exp(-((ys - centres[..., 1:2]) ** 2) / (2 * self.sigma**2))
        values = gy.unsqueeze(-1) * gx.unsqueeze(-2)  # (N, n, W, W), separable Gaussian
        return _splat_max(values, ys, xs, self._item_channel, self.channels, size)

    def _contours(self, pixels: torch.Tensor) -> torch.Tensor:
        size = self.size
        half = self.thickness / 2
        margin = math.ceil(half + 1)
        a = pixels[:, self._starts]  # (N, n, 2)
        b = pixels[:, self._ends]
        low = torch.minimum(a, b) - margin
        # One window size for all segments: the largest extent in this batch (one host sync).
        extent = (torch.maximum(a, b) + margin).ceil() - low.floor()
        width = min(int(extent.amax().item()) + 1, size)
        origin = _window_origin(low, width, size)
        offsets = torch.arange(width, device=pixels.device)
        xs = origin[..., 0:1] + offsets  # (N, n, W)
        ys = origin[..., 1:2] + offsets
        ab = (b - a)[..., None, None, :]  # (N, n, 1, 1, 2)
        inv_length2 = 1.0 / (ab * ab).sum(-1).clamp_min(1e-8)
        dx = (xs - a[..., 0:1]).unsqueeze(-2)  # (N, n, 1, W)
        dy = (ys - a[..., 1:2]).unsqueeze(-1)  # (N, n, W, 1)
        # Distance from each pixel to its closest point on the segment a + t (b - a), t in [0, 1].
        t = ((dx * ab[..., 0] + dy * ab[..., 1]) * inv_length2).clamp_(0, 1)
        ex = dx - t * ab[..., 0]
        ey = dy - t * ab[..., 1]
        distance = (ex * ex + ey * ey).sqrt_()
        # Anti-aliased edge: 1 within the line's half-width, falling to 0 over one pixel.
        values = (half + 0.5 - distance).clamp_(0, 1)
        return _splat_max(values, ys, xs, self._item_channel, self.channels, size)
