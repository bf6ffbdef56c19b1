"""Face regions of a photo for the real-face image metrics, and the (generated clip, photo) input.

A region is the integer pixel box around some of the photo's 68 landmarks (a `range` from
talkface.faces.layout), grown by `margin` times the points' extent on each side and kept
inside the image:

    x0 = floor(min x·W − margin·(max x − min x)·W),  x1 = ceil(max x·W + margin·(max x − min x)·W)

(the same for y with H), then clamped to [0, W] / [0, H]; a box never has fewer than one pixel
per side. The box comes from the *photo* and is cut at the same place from the photo and from
every generated frame of its clip: the generator keeps the photo's framing (warp-based
generation, output at the photo's size), so the region is the same part of the face in both.

The metrics take a clip batch: generated frames (B, T, C, H, W) (or one frame per clip,
(B, C, H, W)), the photo of each clip (B, C, H, W), the photo's landmarks (B, 68, 2) normalised
to [0, 1] (x by the width, y by the height), and an optional (B, T) mask of valid frames for
clips of unequal length. Images are float in [0, 1] or uint8 (divided by 255).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from talkface.faces.layout import NUM_POINTS
from talkface.metrics.landmark_distance import frame_mask


def landmark_boxes(landmarks: Tensor, parts: Sequence[range], size: tuple[int, int], margin: float) -> Tensor:
    """Integer boxes (B, 4) as (x0, y0, x1, y1) around the points of `parts` of (B, 68, 2) landmarks.

    landmarks are normalised to [0, 1]; size is the image's (H, W); margin is the fraction of the
    points' width (height) added on the left and right (top and bottom). See the module doc.
    """
    if landmarks.ndim != 3 or landmarks.shape[-2:] != (NUM_POINTS, 2):
        raise ValueError(f"landmarks must be (B, 68, 2), got {tuple(landmarks.shape)}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    height, width = size
    indices = sorted({index for part in parts for index in part})
    points = landmarks[:, indices, :].double() * torch.tensor([width, height], dtype=torch.float64)
    low, high = points.min(dim=1).values, points.max(dim=1).values  # (B, 2) as (x, y)
    pad = margin * (high - low)
    limit = torch.tensor([width, height], dtype=torch.long)
    start = torch.floor(low - pad).long().clamp(min=torch.zeros_like(limit), max=limit - 1)
    stop = torch.ceil(high + pad).long().clamp(max=limit)
    stop = torch.maximum(stop, start + 1)
    return torch.cat([start, stop], dim=1)


def as_unit_float(images: Tensor) -> Tensor:
    """float64 images in [0, 1]: uint8 divided by 255, float kept as is."""
    if images.dtype == torch.uint8:
        return images.double() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"images must be float in [0, 1] or uint8, got {images.dtype}")
    return images.double()


def clip_regions(
    preds: Tensor, photo: Tensor, photo_landmarks: Tensor, parts: Sequence[range], margin: float, mask: Tensor | None
) -> Iterator[tuple[Tensor, Tensor]]:
    """Per clip: (its valid generated frames' region (T', C, h, w), the photo's region (C, h, w)), float64."""
    if preds.ndim == 4:
        preds = preds.unsqueeze(1)
    if preds.ndim != 5:
        raise ValueError(f"generated frames must be (B, C, H, W) or (B, T, C, H, W), got {tuple(preds.shape)}")
    batch, frames = preds.shape[:2]
    if photo.ndim != 4 or photo.shape[0] != batch or photo.shape[1:] != preds.shape[2:]:
        raise ValueError(f"photo must be (B, C, H, W) = {(batch, *preds.shape[2:])}, got {tuple(photo.shape)}")
    if photo_landmarks.shape[:1] != (batch,):
        raise ValueError(f"{tuple(photo_landmarks.shape)} photo landmarks for {batch} clips")
    boxes = landmark_boxes(photo_landmarks.detach().cpu(), parts, tuple(preds.shape[-2:]), margin)
    valid = frame_mask(mask, batch, frames, preds.device)
    for index, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        clip = preds[index][valid[index]]
        yield as_unit_float(clip[..., y0:y1, x0:x1]), as_unit_float(photo[index, :, y0:y1, x0:x1])


def synced_states(metric: Metric, names: Sequence[str]) -> dict[str, int]:
    """The named count states of `metric`, summed over all processes (as compute() sees them)."""
    with metric.sync_context(
        dist_sync_fn=metric.dist_sync_fn, should_sync=metric._to_sync, should_unsync=metric._should_unsync
    ):
        return {name: int(getattr(metric, name).item()) for name in names}
