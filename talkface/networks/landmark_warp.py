"""Warp an identity frame so that its landmarks land on target landmarks: stage 2's geometry.

A generator that has to redraw the whole face from a bottleneck learns the faces it was trained
on and blurs everyone else's. Moving the photo's own pixels instead keeps any identity: for each
output pixel, a backward displacement (where to read the reference) is interpolated from the 68
landmark displacements (target → reference) by Gaussian radial basis functions, with points
along the crop border pinned so the background stays put, evaluated on a coarse grid, upsampled
and applied with `grid_sample`. The network then only corrects what a warp cannot make (the
inside of an opening mouth, teeth, creases).

Coordinates are the pipeline's: landmarks normalised to [0, 1] of the square crop.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

BORDER_POINTS_PER_SIDE = 8
FIELD_STEP = 4  # the field is evaluated every 4 output pixels, then upsampled bilinearly


def _border_points(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(4 * n, 2) points along the crop's edge, pinned (displacement 0)."""
    t = torch.linspace(0, 1, BORDER_POINTS_PER_SIDE + 1, device=device, dtype=dtype)[:-1]
    zeros, ones = torch.zeros_like(t), torch.ones_like(t)
    return torch.cat(
        [torch.stack(p, dim=-1) for p in ((t, zeros), (ones, t), (1 - t, ones), (zeros, 1 - t))],
        dim=0,
    )


def _gaussian(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-|a_i - b_j|² / 2σ²) for (B, N, 2) and (B, M, 2) → (B, N, M)."""
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * sigma**2))


def displacement_field(
    reference_landmarks: torch.Tensor,
    target_landmarks: torch.Tensor,
    size: int,
    sigma: float = 0.1,
    smoothing: float = 1e-3,
) -> torch.Tensor:
    """(B, 2, size, size) backward displacement in [0, 1] units: output pixel x reads the reference at x + d(x).

    reference_landmarks, target_landmarks: (B, 68, 2) in [0, 1]. `sigma` is the Gaussian's width
    in crop units (0.1 ≈ half a mouth width); `smoothing` a ridge term that keeps the field
    smooth where points crowd.
    """
    batch = target_landmarks.shape[0]
    dtype = torch.float32  # the solve needs float32 even under mixed precision
    target = target_landmarks.to(dtype)
    border = _border_points(target.device, dtype).expand(batch, -1, -1)
    centres = torch.cat([target, border], dim=1)  # (B, N, 2)
    values = torch.cat([reference_landmarks.to(dtype) - target, torch.zeros_like(border)], dim=1)
    kernel = _gaussian(centres, centres, sigma)
    eye = torch.eye(kernel.shape[-1], device=kernel.device, dtype=dtype)
    weights = torch.linalg.solve(kernel + smoothing * eye, values)  # (B, N, 2)
    coarse = max(2, size // FIELD_STEP)
    axis = (torch.arange(coarse, device=target.device, dtype=dtype) + 0.5) / coarse
    grid_y, grid_x = torch.meshgrid(axis, axis, indexing="ij")
    pixels = torch.stack([grid_x, grid_y], dim=-1).reshape(1, -1, 2).expand(batch, -1, -1)
    field = _gaussian(pixels, centres, sigma) @ weights  # (B, coarse², 2)
    field = field.transpose(1, 2).reshape(batch, 2, coarse, coarse)
    return F.interpolate(field, size=(size, size), mode="bilinear", align_corners=False)


def warp_by_field(image: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """Sample image (B, C, S, S) at x + field(x); field (B, 2, S, S) in [0, 1] units."""
    size = image.shape[-1]
    axis = (torch.arange(size, device=image.device, dtype=field.dtype) + 0.5) / size
    grid_y, grid_x = torch.meshgrid(axis, axis, indexing="ij")
    source = torch.stack([grid_x, grid_y], dim=0)[None] + field  # (B, 2, S, S) in [0, 1]
    grid = (source * 2 - 1).permute(0, 2, 3, 1)  # grid_sample's [-1, 1], x first
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=False)


STILL_BELOW_PX = 0.25  # motion under this many crop pixels is left out: the pixels stay exact
MOVING_ABOVE_PX = 0.75  # motion over this is kept whole; in between it fades in


def settle_small_motion(field: torch.Tensor) -> torch.Tensor:
    """The field with sub-pixel motion faded to exactly zero.

    Resampling at a fractional offset is a small blur, and the RBF field is nowhere exactly zero,
    so without this the whole face would lose sharpness for motion nobody can see. Where the
    field is zero the warp returns the photo's own pixels.
    """
    pixels = field.norm(dim=1, keepdim=True) * field.shape[-1]
    keep = ((pixels - STILL_BELOW_PX) / (MOVING_ABOVE_PX - STILL_BELOW_PX)).clamp(0, 1)
    return field * keep


def warp_to_landmarks(
    image: torch.Tensor, reference_landmarks: torch.Tensor, target_landmarks: torch.Tensor, sigma: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The image warped so its landmarks move to the targets, and the field used (B, 2, S, S)."""
    field = settle_small_motion(displacement_field(reference_landmarks, target_landmarks, image.shape[-1], sigma))
    return warp_by_field(image, field), field


def inner_mouth_mask(landmarks: torch.Tensor, size: int, softness: float = 1.0) -> torch.Tensor:
    """(B, 1, size, size) in [0, 1]: a soft ellipse over the open mouth's inside (between the inner lips).

    No warp can make what was hidden behind closed lips, so a warping generator must draw these
    pixels itself; the mask is 0 for a closed mouth and grows with the gap. The ellipse spans the
    inner mouth corners (60, 64) and is as tall as the mean gap of the facing inner-lip points
    (61-67, 62-66, 63-65), plus `softness` pixels of soft edge.
    """
    along, across, half_width, gap = mouth_axes(landmarks, size)
    half_height = gap / 2
    # Signed distance-like value: > 0 inside the ellipse, in pixels near its edge.
    radius = (
        (along / half_width[:, None, None]) ** 2 + (across / half_height.clamp_min(0.5)[:, None, None]) ** 2
    ).sqrt()
    inside = (1 - radius) * torch.minimum(half_width, half_height.clamp_min(0.5))[:, None, None]
    mask = torch.sigmoid(inside / max(softness, 1e-3) * 2)
    opened = (gap / 2).clamp(0, 1)  # fades in over the first 2 pixels of gap: a closed mouth has none
    return (mask * opened[:, None, None])[:, None].to(landmarks.dtype)


def mouth_axes(landmarks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pixel of the size² crop in the open mouth's own frame, for (B, 68, 2) landmarks in
    [0, 1]: (B, size, size) pixels along the mouth (from its centre towards corner 64) and across
    it (down the face), and the ellipse's half width and gap (B,), all in pixels."""
    centre, direction, half_width, gap = mouth_ellipse(landmarks.float() * size)
    coords = torch.arange(size, device=landmarks.device, dtype=torch.float32) + 0.5
    grid_y, grid_x = torch.meshgrid(coords, coords, indexing="ij")
    dx = grid_x[None] - centre[:, 0, None, None]
    dy = grid_y[None] - centre[:, 1, None, None]
    along = dx * direction[:, 0, None, None] + dy * direction[:, 1, None, None]
    across = -dx * direction[:, 1, None, None] + dy * direction[:, 0, None, None]
    return along, across, half_width, gap


def mouth_ellipse(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The open mouth's ellipse from (B, 68, 2) pixel points: centre (B, 2), unit direction of the
    inner mouth corners 60 → 64 (B, 2), half width (B,), and the mean gap of the facing inner-lip
    points 61-67, 62-66, 63-65 (B,)."""
    upper, lower = points[:, [61, 62, 63]], points[:, [67, 66, 65]]
    centre = (upper.mean(dim=1) + lower.mean(dim=1)) / 2
    axis = points[:, 64] - points[:, 60]
    half_width = axis.norm(dim=-1).clamp_min(1.0) / 2
    direction = axis / (2 * half_width[:, None])
    gap = (lower - upper).norm(dim=-1).mean(dim=1)
    return centre, direction, half_width, gap


def new_opening_share(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B,) in [0, 1]: the share of the target's inner-lip gap that the photo's own gap does not
    cover, 1 - reference gap / target gap (0 where the photo's mouth is as open, or more)."""
    gap = mouth_ellipse(target.float())[3]
    photo_gap = mouth_ellipse(reference.float())[3]
    return (1 - photo_gap / gap.clamp_min(1e-9)).clamp(0, 1)


def new_mouth_opening_mask(
    target: torch.Tensor, reference: torch.Tensor, size: int, height: float = 1.0, supersample: int = 4
) -> torch.Tensor:
    """(B, 1, size, size) in [0, 1]: the inside of the target's open mouth that the photo does not show.

    A hard ellipse between the target's inner mouth corners (60, 64), `height` inner-lip gaps
    tall, anti-aliased by `supersample`² sub-pixels (no soft tail: it must not reach the cheeks),
    fading in over the first 2 pixels of gap, and weighted by the share of the gap that is new:
    1 - reference gap / target gap: a photo whose mouth is already as open is not darkened.
    """
    centre, direction, half_width, gap = mouth_ellipse(target.float() * size)
    half_height = (gap * height / 2).clamp_min(1e-3)
    opened = (gap / 2).clamp(0, 1)
    weight = opened * new_opening_share(target, reference)
    coverage = torch.zeros(len(target), 1, size, size, device=target.device)
    for index in torch.nonzero(weight > 0).flatten().tolist():  # only around open mouths: ~30x cheaper
        reach = float(torch.maximum(half_width[index], half_height[index])) + 2
        cx, cy = centre[index].tolist()
        x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 1, size)
        y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 1, size)
        if x1 <= x0 or y1 <= y0:
            continue
        xs = (torch.arange(x0 * supersample, x1 * supersample, device=target.device) + 0.5) / supersample
        ys = (torch.arange(y0 * supersample, y1 * supersample, device=target.device) + 0.5) / supersample
        grid_y, grid_x = torch.meshgrid(ys - cy, xs - cx, indexing="ij")
        (ux, uy) = direction[index].tolist()
        along, across = grid_x * ux + grid_y * uy, -grid_x * uy + grid_y * ux
        inside = ((along / half_width[index]) ** 2 + (across / half_height[index]) ** 2 <= 1).float()
        coverage[index, 0, y0:y1, x0:x1] = torch.nn.functional.avg_pool2d(inside[None], supersample)[0]
    return (coverage * weight[:, None, None, None]).to(target.dtype)
