"""Landmark velocity error: how far the predicted motion is from the true motion, per frame step.

The temporal residual loss makes consecutive-frame differences of the prediction match those of
the ground truth; this is the metric that checks it. For each pair of consecutive frames
(t, t+1) where both are valid, the residual of the prediction (pred[t+1] - pred[t]) is compared
with that of the target, point by point (Euclidean distance, in pixels of a `scale`-pixel crop),
averaged over the selected points (mouth or face), then over all valid pairs seen. No centring:
a drift of the whole face is motion too.

States are the sum of per-pair errors and the pair count (reduced by sum), so DDP is exact.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from talkface.metrics.landmark_distance import POINT_SETS, check_landmark_pair, frame_mask, select_points


def velocity_error_sum(
    pred: Tensor, target: Tensor, points: str = "mouth", scale: float = 256.0, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(sum of per-pair velocity errors over valid pairs, number of valid pairs) — the states."""
    check_landmark_pair(pred, target)
    pred_points = select_points(pred, points) * scale
    target_points = select_points(target, points) * scale
    residual = pred_points.diff(dim=1) - target_points.diff(dim=1)  # (B, T-1, P, 2)
    per_pair = torch.linalg.vector_norm(residual, dim=-1).mean(dim=-1)  # (B, T-1)
    valid = frame_mask(mask, pred.shape[0], pred.shape[1], pred.device)
    valid_pairs = valid[:, 1:] & valid[:, :-1]
    return per_pair[valid_pairs].sum(), valid_pairs.sum()


def landmark_velocity_error(
    pred: Tensor, target: Tensor, points: str = "mouth", scale: float = 256.0, mask: Tensor | None = None
) -> Tensor:
    """Mean velocity error over valid frame pairs (NaN when there is none)."""
    total, count = velocity_error_sum(pred, target, points, scale, mask)
    return total / count


class LandmarkVelocityError(Metric):
    """Mean velocity error over all valid frame pairs seen, in crop pixels per frame.

    update(pred, target, mask=None): landmarks (B, T, 68, 2) normalised to [0, 1]; mask (B, T)
    of valid frames — a pair counts only when both of its frames are valid.
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
        self.add_state("error_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("pairs", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        total, count = velocity_error_sum(pred, target, self.points, self.scale, mask)
        self.error_sum += total.to(self.error_sum.dtype)
        self.pairs += count

    def compute(self) -> Tensor:
        return self.error_sum / self.pairs
