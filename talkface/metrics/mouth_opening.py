"""Mouth-opening correlation: does the generated mouth open and close when the real one does?

Landmark distance alone rewards a mouth that barely moves; this metric asks whether the mouth
*tracks* the real one. The mouth opening of a frame is the inner-lip gap over the mouth width:

- gap: the mean Euclidean distance between the three upper inner-lip points and the three lower
  inner-lip points facing them (iBUG 61↔67, 62↔66, 63↔65: the points of layout.INNER_LIPS
  between its corners layout.INNER_MOUTH_CORNERS, the lower ones taken backwards);
- width: the Euclidean distance between the outer mouth corners (layout.MOUTH_CORNERS, 48 and
  54) — steadier than the inner corners, which a detector places loosely on a closed mouth.

The ratio is free of face size and of the landmark unit (pixels, or [0, 1] of a square image:
x and y must share one scale). Per clip, the metric is the Pearson correlation over the clip's
valid frames between the opening of the generated frames and that of the real frames (both from
landmarks re-detected on the frames by the caller); the result is the mean over clips.

A correlation is undefined when one of the two openings does not vary; both cases are handled
explicitly ("does not vary": population standard deviation ≤ `min_std`, default 1e-6 — far below
the jitter of any detector, so only a truly constant opening counts):

- the **real** opening does not vary (a still or silent clip, or fewer than 2 valid frames): the
  clip says nothing about sync, so it is **skipped** (not in the mean) and counted in
  `skipped_clips`;
- the real opening varies but the **generated** one does not: a still mouth does not track
  speech, so the clip **counts as 0** (no linear relation) and is counted in `still_clips`.
  Skipping it instead would reward a generator that holds the mouth shut.

States are the sum of per-clip correlations and the clip counts, all reduced by sum, so the
value is the same on one process or split over many (DDP). `compute()` is NaN before any clip
counted.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from talkface.faces.layout import INNER_LIPS, INNER_MOUTH_CORNERS, MOUTH_CORNERS
from talkface.metrics.face_regions import synced_states
from talkface.metrics.landmark_distance import check_landmark_pair, frame_mask

_RIGHT_INNER, _LEFT_INNER = INNER_MOUTH_CORNERS
UPPER_INNER_LIPS = range(_RIGHT_INNER + 1, _LEFT_INNER)  # 61, 62, 63 (right to left)
LOWER_INNER_LIPS = range(INNER_LIPS.stop - 1, _LEFT_INNER, -1)  # 67, 66, 65: below 61, 62, 63
DEFAULT_MIN_STD = 1e-6


def mouth_opening(landmarks: Tensor) -> Tensor:
    """Inner-lip gap over mouth width, (...) for (..., 68, 2) landmarks (any unit shared by x and y)."""
    upper = landmarks[..., list(UPPER_INNER_LIPS), :]
    lower = landmarks[..., list(LOWER_INNER_LIPS), :]
    gap = torch.linalg.vector_norm(upper - lower, dim=-1).mean(dim=-1)
    right, left = MOUTH_CORNERS
    width = torch.linalg.vector_norm(landmarks[..., right, :] - landmarks[..., left, :], dim=-1)
    return gap / width


def clip_correlations(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, min_std: float = DEFAULT_MIN_STD
) -> tuple[Tensor, Tensor, Tensor]:
    """Per clip (B,): Pearson correlation of the openings, whether it counts, whether it is still.

    pred, target: (B, T, 68, 2) landmarks of the generated and of the real frames; mask (B, T) of
    valid frames. Returns (correlation float64 — 0 for a still generated mouth, NaN for a skipped
    clip; counted: the real opening varies; still: counted, with a generated opening that does not).
    """
    check_landmark_pair(pred, target)
    weights = frame_mask(mask, pred.shape[0], pred.shape[1], pred.device).double()
    frames = weights.sum(dim=1)
    centred = []
    for landmarks in (pred, target):
        opening = mouth_opening(landmarks.double())
        opening = torch.where(weights > 0, opening, 0.0)  # padded frames may hold anything
        mean = (opening * weights).sum(dim=1, keepdim=True) / frames.clamp_min(1).unsqueeze(1)
        centred.append((opening - mean) * weights)
    generated, real = centred
    variance_generated = (generated**2).sum(dim=1)
    variance_real = (real**2).sum(dim=1)
    counted = (frames >= 2) & (variance_real / frames.clamp_min(1) > min_std**2)
    still = counted & (variance_generated / frames.clamp_min(1) <= min_std**2)
    correlation = (generated * real).sum(dim=1) / (variance_generated * variance_real).sqrt()
    correlation = correlation.clamp(-1.0, 1.0)
    correlation = torch.where(still, 0.0, correlation)
    correlation = torch.where(counted, correlation, torch.nan)
    return correlation, counted, still


def mouth_opening_correlation(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, min_std: float = DEFAULT_MIN_STD
) -> Tensor:
    """Mean over counted clips of the per-clip correlation (NaN when no clip counts)."""
    correlation, counted, _ = clip_correlations(pred, target, mask, min_std)
    return (correlation[counted].sum() / counted.sum()).float()


class MouthOpeningCorrelation(Metric):
    """Mean over clips of the Pearson correlation of generated and real mouth opening (see module doc).

    update(pred, target, mask=None): landmarks (B, T, 68, 2) re-detected on the generated frames
    (pred) and on the real frames (target); mask (B, T) of valid frames. `clip_counts()` gives
    how many clips counted, how many of them had a still generated mouth (scored 0) and how many
    were skipped for a real opening that does not vary.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, min_std: float = DEFAULT_MIN_STD, **kwargs) -> None:
        super().__init__(**kwargs)
        if not min_std >= 0:
            raise ValueError(f"min_std must be >= 0, got {min_std}")
        self.min_std = min_std
        self.add_state("correlation_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("clips", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("still_clips", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("skipped_clips", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        correlation, counted, still = clip_correlations(pred.detach(), target.detach(), mask, self.min_std)
        self.correlation_sum += correlation[counted].sum().to(self.correlation_sum.device)
        self.clips += counted.sum().to(self.clips.device)
        self.still_clips += still.sum().to(self.clips.device)
        self.skipped_clips += (~counted).sum().to(self.clips.device)

    def compute(self) -> Tensor:
        return (self.correlation_sum / self.clips).float()

    def clip_counts(self) -> dict[str, int]:
        """{"clips": counted, "still_clips": counted as 0, "skipped_clips": not counted}, over all processes."""
        return synced_states(self, ("clips", "still_clips", "skipped_clips"))
