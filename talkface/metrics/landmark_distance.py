"""LMD (landmark distance), as the talking-face papers use it, in pixels of a 256×256 aligned crop.

For each valid frame, the selected points (mouth 48–67, or all 68 for "face") of the prediction
and of the target are each centred on their own mean — so a global shift of the face does not
count, only its shape — then the Euclidean distance per point is averaged over the points. The
metric is the mean of that per-frame value over all valid frames seen.

The states are a sum of per-frame distances and a frame count (both reduced by sum), so the
value is the same whether the frames were seen by one process or split over many (DDP), and
whatever the batch sizes were.

The helpers `select_points` and `frame_mask` are shared with the velocity error.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from talkface.faces.layout import FACE, MOUTH, NUM_POINTS, span

# Point sets of the 68-point iBUG layout a metric can be computed on.
POINT_SETS: dict[str, range] = {
    "mouth": MOUTH,  # outer lips 48–59 + inner lips 60–67
    "face": FACE,
}


def select_points(landmarks: Tensor, points: str) -> Tensor:
    """The `points` subset ("mouth" or "face") of (..., 68, 2) landmarks."""
    if points not in POINT_SETS:
        raise ValueError(f"points must be one of {sorted(POINT_SETS)}, got {points!r}")
    return landmarks[..., span(POINT_SETS[points]), :]


def check_landmark_pair(pred: Tensor, target: Tensor) -> None:
    """Fail with a clear message unless both are (B, T, 68, 2) of the same shape."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.ndim != 4 or pred.shape[-2:] != (NUM_POINTS, 2):
        raise ValueError(f"landmarks must be (B, T, 68, 2), got {tuple(pred.shape)}")


def frame_mask(mask: Tensor | None, batch: int, frames: int, device: torch.device) -> Tensor:
    """(B, T) bool mask of valid frames; None means all valid, a float mask is valid where non-zero."""
    if mask is None:
        return torch.ones(batch, frames, dtype=torch.bool, device=device)
    if mask.shape != (batch, frames):
        raise ValueError(f"mask must be (B, T) = {(batch, frames)}, got {tuple(mask.shape)}")
    return mask.to(device) != 0


def landmark_distance_sum(
    pred: Tensor, target: Tensor, points: str = "mouth", scale: float = 256.0, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(sum of per-frame LMD over valid frames, number of valid frames) — the metric's states."""
    check_landmark_pair(pred, target)
    pred_points = select_points(pred, points) * scale
    target_points = select_points(target, points) * scale
    pred_points = pred_points - pred_points.mean(dim=-2, keepdim=True)
    target_points = target_points - target_points.mean(dim=-2, keepdim=True)
    per_frame = torch.linalg.vector_norm(pred_points - target_points, dim=-1).mean(dim=-1)  # (B, T)
    valid = frame_mask(mask, pred.shape[0], pred.shape[1], pred.device)
    return per_frame[valid].sum(), valid.sum()


def landmark_distance(
    pred: Tensor, target: Tensor, points: str = "mouth", scale: float = 256.0, mask: Tensor | None = None
) -> Tensor:
    """Mean LMD over valid frames (NaN when there is none)."""
    total, count = landmark_distance_sum(pred, target, points, scale, mask)
    return total / count


class LandmarkDistance(Metric):
    """LMD over all frames seen (mouth or full face), in pixels of a `scale`-pixel aligned crop.

    update(pred, target, mask=None): landmarks (B, T, 68, 2) normalised to [0, 1]; mask (B, T)
    of valid frames (bool, or float valid where non-zero).
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False

    def __init__(self, points: str = "mouth", scale: float = 256.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if points not in POINT_SETS:
            raise ValueError(f"points must be one of {sorted(POINT_SETS)}, got {points!r}")
        self.points = points
        self.scale = scale
        self.add_state("distance_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("frames", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        total, count = landmark_distance_sum(pred, target, self.points, self.scale, mask)
        self.distance_sum += total.to(self.distance_sum.dtype)
        self.frames += count

    def compute(self) -> Tensor:
        return self.distance_sum / self.frames
