"""Upper-face fidelity: PSNR of the eyes–nose region of each generated frame against the photo.

Speech moves the mouth and the jaw, not the eyes and the nose: there a generated frame should
keep the photo's pixels (the identity). The region is the box around the photo's eye and nose
landmarks (layout.EYES ∪ layout.NOSE) grown by `margin` (default 0.1) of its extent on each side
(see face_regions), cut at the same place from the photo and from every generated frame of the
clip. Per frame, PSNR = 10·log10(1 / MSE) in dB, MSE over the region's channels and pixels,
images in [0, 1]. The metric is the mean of the per-frame PSNR over all valid frames seen.

**Cap**: a region identical to the photo has MSE 0 and infinite PSNR, which would turn the mean
into inf and hide every other frame (copying the photo does this for a whole clip). Each frame's
PSNR is therefore capped at `max_db` (default 100 dB, i.e. MSE clamped at 1e-10: far above any
real difference — one grey level off in one pixel of a 50×50 region is ~82 dB — and far below a
number that drowns the mean).

States: the sum of per-frame PSNR and the frame count (both reduced by sum), so DDP is exact.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from talkface.faces.layout import EYES, NOSE
from talkface.metrics.face_regions import clip_regions

UPPER_FACE = (EYES, NOSE)
DEFAULT_UPPER_FACE_MARGIN = 0.1
DEFAULT_MAX_DB = 100.0


def region_psnr(frames: Tensor, photo: Tensor, max_db: float = DEFAULT_MAX_DB) -> Tensor:
    """Per-frame PSNR (T,) in dB, capped at max_db, of regions (T, C, h, w) against (C, h, w), in [0, 1]."""
    mse = ((frames - photo.unsqueeze(0)) ** 2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(10.0 ** (-max_db / 10.0)))


def upper_face_psnr_sum(
    preds: Tensor,
    photo: Tensor,
    photo_landmarks: Tensor,
    mask: Tensor | None = None,
    margin: float = DEFAULT_UPPER_FACE_MARGIN,
    max_db: float = DEFAULT_MAX_DB,
) -> tuple[Tensor, Tensor]:
    """(sum of per-frame upper-face PSNR over valid frames, number of valid frames) — the states."""
    total = torch.tensor(0.0, dtype=torch.float64)
    count = 0
    for frames, region in clip_regions(preds, photo, photo_landmarks, UPPER_FACE, margin, mask):
        total += region_psnr(frames, region, max_db).sum().cpu()
        count += frames.shape[0]
    return total, torch.tensor(count)


def upper_face_psnr(
    preds: Tensor,
    photo: Tensor,
    photo_landmarks: Tensor,
    mask: Tensor | None = None,
    margin: float = DEFAULT_UPPER_FACE_MARGIN,
    max_db: float = DEFAULT_MAX_DB,
) -> Tensor:
    """Mean per-frame upper-face PSNR (dB) over valid frames (NaN when there is none)."""
    total, count = upper_face_psnr_sum(preds, photo, photo_landmarks, mask, margin, max_db)
    return (total / count).float()


class UpperFacePSNR(Metric):
    """Mean per-frame PSNR (dB, capped at `max_db`) of the eyes–nose region against the photo.

    update(preds, photo, photo_landmarks, mask=None): generated frames (B, T, C, H, W) or
    (B, C, H, W); the photo of each clip (B, C, H, W); the photo's landmarks (B, 68, 2) normalised
    to [0, 1]; mask (B, T) of valid frames. Images float in [0, 1] or uint8.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, margin: float = DEFAULT_UPPER_FACE_MARGIN, max_db: float = DEFAULT_MAX_DB, **kwargs) -> None:
        super().__init__(**kwargs)
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if not max_db > 0:
            raise ValueError(f"max_db must be > 0, got {max_db}")
        self.margin = margin
        self.max_db = max_db
        self.add_state("psnr_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("frames", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, photo: Tensor, photo_landmarks: Tensor, mask: Tensor | None = None) -> None:
        total, count = upper_face_psnr_sum(
            preds.detach(), photo.detach(), photo_landmarks, mask, self.margin, self.max_db
        )
        self.psnr_sum += total.to(self.psnr_sum.device)
        self.frames += count.to(self.frames.device)

    def compute(self) -> Tensor:
        return (self.psnr_sum / self.frames).float()
