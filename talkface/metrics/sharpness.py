"""Sharpness ratio of the face region: focus measure of the generated face over that of the photo.

A face rendered small and pasted back, or a generator that smooths, loses fine detail (skin,
eyelashes, hair edges) that the photo has. The focus measure is the **variance of the
Laplacian** (Pech-Pacheco et al., 2000; the usual `cv2.Laplacian(grey).var()` blur detector):
the grey image (ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B; one-channel images as they are)
is filtered with the 4-neighbour 3×3 Laplacian [[0, 1, 0], [1, −4, 1], [0, 1, 0]] on the
region's interior only (no padding, so the region's border adds no edges), and the population
variance of the response is taken.

Why this measure and not the mean gradient magnitude: it responds only to the highest spatial
frequencies, exactly what rendering small and up-sampling, or smoothing, removes; gradient
measures also see the coarse edges a soft face keeps. Measured on the face region of three
real photos (../shared/data/real/faces, dlib landmarks), ratio to the photo:

                                   Laplacian variance     mean Sobel gradient magnitude
    Gaussian blur σ = 0.5 px       0.39–0.61              0.92–0.97
    Gaussian blur σ = 1 px         0.04–0.18              0.79–0.89
    half resolution, up-sampled    0.06–0.21              0.79–0.89
    JPEG quality 95 / 75           1.0–1.1 / 0.73–1.0     1.0 / 1.0

so a face rendered at half the photo's resolution, the softness this metric exists to catch,
scores ~0.1 here but passes a 0.8 bar with gradients. It needs no threshold or window size and
is cheap. Being a variance it scales with contrast squared (a ratio of 0.8 is about 0.9 in
amplitude), and strong compression lowers it too: compare frames and photo at like quality.
A ratio above 1 means more high-frequency energy than the photo (sharper, or noise and
artefacts); it is not capped.

The region is the box around all 68 landmarks of the photo (layout.FACE: jaw, brows, eyes,
nose, mouth) grown by `margin` (default 0: the face without hair or background), cut at the
same place from the photo and from every generated frame of the clip (see face_regions). Per
frame, ratio = measure(generated region) / measure(photo region); the metric is the mean of the
per-frame ratio over all valid frames seen. A photo region with zero measure (flat, or smaller
than 3×3) gives no ratio: its frames are skipped and counted in `skipped_frames`.

States: the sum of ratios and the frame counts (reduced by sum), so DDP is exact.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from talkface.faces.layout import FACE
from talkface.metrics.face_regions import clip_regions, synced_states

DEFAULT_FACE_MARGIN = 0.0
LUMA = (0.299, 0.587, 0.114)


def grey(images: Tensor) -> Tensor:
    """(..., H, W) grey of (..., C, H, W) images: BT.601 luma for 3 channels, the channel for 1."""
    if images.shape[-3] == 1:
        return images[..., 0, :, :]
    if images.shape[-3] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[-3]}")
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device)
    return (images * weights.view(3, 1, 1)).sum(dim=-3)


def laplacian_variance(images: Tensor) -> Tensor:
    """Variance of the 3×3 Laplacian of the grey image, (...) for (..., C, H, W); 0 when under 3×3."""
    image = grey(images)
    if image.shape[-1] < 3 or image.shape[-2] < 3:
        return torch.zeros(image.shape[:-2], dtype=image.dtype, device=image.device)
    centre = image[..., 1:-1, 1:-1]
    response = (
        image[..., :-2, 1:-1] + image[..., 2:, 1:-1] + image[..., 1:-1, :-2] + image[..., 1:-1, 2:] - 4.0 * centre
    )
    return response.flatten(-2).var(dim=-1, unbiased=False)


def sharpness_ratio_sum(
    preds: Tensor,
    photo: Tensor,
    photo_landmarks: Tensor,
    mask: Tensor | None = None,
    margin: float = DEFAULT_FACE_MARGIN,
) -> tuple[Tensor, Tensor, Tensor]:
    """(sum of per-frame ratios, frames with a ratio, frames skipped for a flat photo region) — the states."""
    total = torch.tensor(0.0, dtype=torch.float64)
    count = skipped = 0
    for frames, region in clip_regions(preds, photo, photo_landmarks, (FACE,), margin, mask):
        reference = laplacian_variance(region)
        if reference.item() > 0:
            total += (laplacian_variance(frames) / reference).sum().cpu()
            count += frames.shape[0]
        else:
            skipped += frames.shape[0]
    return total, torch.tensor(count), torch.tensor(skipped)


def sharpness_ratio(
    preds: Tensor,
    photo: Tensor,
    photo_landmarks: Tensor,
    mask: Tensor | None = None,
    margin: float = DEFAULT_FACE_MARGIN,
) -> Tensor:
    """Mean per-frame sharpness ratio over valid frames (NaN when there is none)."""
    total, count, _ = sharpness_ratio_sum(preds, photo, photo_landmarks, mask, margin)
    return (total / count).float()


class SharpnessRatio(Metric):
    """Mean per-frame ratio of the face region's Laplacian variance, generated over photo (module doc).

    update(preds, photo, photo_landmarks, mask=None): generated frames (B, T, C, H, W) or
    (B, C, H, W); the photo of each clip (B, C, H, W); the photo's landmarks (B, 68, 2) normalised
    to [0, 1]; mask (B, T) of valid frames. Images float in [0, 1] or uint8. `frame_counts()`
    gives the frames scored and the frames skipped for a flat photo region.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, margin: float = DEFAULT_FACE_MARGIN, **kwargs) -> None:
        super().__init__(**kwargs)
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = margin
        self.add_state("ratio_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("frames", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("skipped_frames", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, photo: Tensor, photo_landmarks: Tensor, mask: Tensor | None = None) -> None:
        total, count, skipped = sharpness_ratio_sum(preds.detach(), photo.detach(), photo_landmarks, mask, self.margin)
        self.ratio_sum += total.to(self.ratio_sum.device)
        self.frames += count.to(self.frames.device)
        self.skipped_frames += skipped.to(self.frames.device)

    def compute(self) -> Tensor:
        return (self.ratio_sum / self.frames).float()

    def frame_counts(self) -> dict[str, int]:
        """{"frames": scored, "skipped_frames": photo region flat}, over all processes."""
        return synced_states(self, ("frames", "skipped_frames"))
