"""Stage-2 image metrics: PSNR and SSIM of whole frames and of the mouth region.

Images are float (B, 3, H, W) in [0, 1] (leading dims such as (B, T) are flattened, so video
batches work too); map a generator's [-1, 1] output to [0, 1] before updating.

Averaging: every metric here is the **mean of per-image values** (state: sum of per-image
values + image count, both reduced by sum). That is well defined whatever the batch sizes and
the number of processes, and it is what a per-image numpy reference gives. (torchmetrics'
PeakSignalNoiseRatio with its default `dim=None` would instead pool the squared error over all
pixels of all images first, which depends on nothing per image and differs from this.) An image
identical to its target has infinite PSNR, so the mean is then inf — as the definition says.
The per-image values come from torchmetrics' functional PSNR / SSIM (data_range=1.0).

The mouth metrics crop a fixed-size square centred on the mouth of the *target* landmarks
(normalised (B, 68, 2)) from both images first; the box side is a fixed fraction of the image
size, so crops of one batch have one shape and stack.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from talkface.faces.layout import MOUTH, NUM_POINTS, span

MOUTH_POINTS = MOUTH
# 96 px on a 256 crop, 48 on a 128 crop: the lips with a margin, as lip-reading crops use.
DEFAULT_BOX_FRACTION = 0.375


def mouth_boxes(landmarks: Tensor, size: int | tuple[int, int], box_fraction: float = DEFAULT_BOX_FRACTION) -> Tensor:
    """Integer square boxes (B, 4) as (x0, y0, x1, y1), centred on the mouth, inside the image.

    landmarks: (B, 68, 2) of (x, y) normalised to [0, 1]; size: the image side, or (H, W).
    The side is round(box_fraction * min(H, W)) for every box, so crops batch; a box that would
    leave the image is shifted back inside it (never shrunk).
    """
    height, width = (size, size) if isinstance(size, int) else size
    if landmarks.ndim != 3 or landmarks.shape[-2:] != (NUM_POINTS, 2):
        raise ValueError(f"landmarks must be (B, 68, 2), got {tuple(landmarks.shape)}")
    if not 0.0 < box_fraction <= 1.0:
        raise ValueError(f"box_fraction must be in (0, 1], got {box_fraction}")
    side = max(1, round(box_fraction * min(height, width)))
    centre = landmarks[:, span(MOUTH_POINTS), :].mean(dim=1)  # (B, 2)
    x0 = torch.round(centre[:, 0] * width - side / 2).long().clamp(0, width - side)
    y0 = torch.round(centre[:, 1] * height - side / 2).long().clamp(0, height - side)
    return torch.stack([x0, y0, x0 + side, y0 + side], dim=1)


def crop_boxes(images: Tensor, boxes: Tensor) -> Tensor:
    """Crops (B, C, h, w) of images (B, C, H, W) by boxes (B, 4) of (x0, y0, x1, y1), all one size."""
    if images.shape[0] != boxes.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {boxes.shape[0]} boxes")
    sizes = {(int(x1 - x0), int(y1 - y0)) for x0, y0, x1, y1 in boxes.tolist()}
    if len(sizes) > 1:
        raise ValueError(f"boxes must all have one size to stack, got {sorted(sizes)}")
    return torch.stack([image[:, y0:y1, x0:x1] for image, (x0, y0, x1, y1) in zip(images, boxes.tolist(), strict=True)])


def _flatten_images(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """(N, C, H, W) views of two equally shaped (..., C, H, W) image batches."""
    if preds.shape != target.shape:
        raise ValueError(f"preds and target shapes differ: {tuple(preds.shape)} vs {tuple(target.shape)}")
    if preds.ndim < 4:
        raise ValueError(f"images must be (B, C, H, W) or (B, T, C, H, W), got {tuple(preds.shape)}")
    return preds.reshape(-1, *preds.shape[-3:]), target.reshape(-1, *target.shape[-3:])


def frame_psnr(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR (N,) in dB of (N, C, H, W) images in [0, 1]."""
    return peak_signal_noise_ratio(preds, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


def frame_ssim(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image SSIM (N,) of (N, C, H, W) images in [0, 1] (11×11 Gaussian window, σ = 1.5)."""
    return structural_similarity_index_measure(preds, target, data_range=1.0, reduction="none")


class _PerImageMean(Metric):
    """Mean over all images seen of a per-image score; subclasses say which score."""

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("value_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("images", default=torch.tensor(0), dist_reduce_fx="sum")

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def _accumulate(self, preds: Tensor, target: Tensor) -> None:
        values = self._per_image(preds, target)
        self.value_sum += values.sum().to(self.value_sum.dtype)
        self.images += values.numel()

    def update(self, preds: Tensor, target: Tensor) -> None:
        """preds, target: (B, 3, H, W) or (B, T, 3, H, W) float in [0, 1]."""
        self._accumulate(*_flatten_images(preds, target))

    def compute(self) -> Tensor:
        return self.value_sum / self.images


class FramePSNR(_PerImageMean):
    """Mean per-image PSNR (dB) of whole frames. update(preds, target)."""

    is_differentiable = True
    higher_is_better = True

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        return frame_psnr(preds, target)


class FrameSSIM(_PerImageMean):
    """Mean per-image SSIM of whole frames. update(preds, target)."""

    is_differentiable = True
    higher_is_better = True

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        return frame_ssim(preds, target)


class _MouthMixin:
    """Crop the mouth box of the target landmarks from both images before scoring."""

    def __init__(self, box_fraction: float = DEFAULT_BOX_FRACTION, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 < box_fraction <= 1.0:
            raise ValueError(f"box_fraction must be in (0, 1], got {box_fraction}")
        self.box_fraction = box_fraction

    def update(self, preds: Tensor, target: Tensor, landmarks: Tensor) -> None:
        """preds, target: (B, [T,] 3, H, W) in [0, 1]; landmarks: the target's (B, [T,] 68, 2), normalised."""
        preds, target = _flatten_images(preds, target)
        landmarks = landmarks.reshape(-1, NUM_POINTS, 2)
        if landmarks.shape[0] != preds.shape[0]:
            raise ValueError(f"{landmarks.shape[0]} landmark sets for {preds.shape[0]} images")
        boxes = mouth_boxes(landmarks, (preds.shape[-2], preds.shape[-1]), self.box_fraction)
        self._accumulate(crop_boxes(preds, boxes), crop_boxes(target, boxes))


class MouthPSNR(_MouthMixin, FramePSNR):
    """Mean per-image PSNR (dB) of the mouth region. update(preds, target, landmarks)."""


class MouthSSIM(_MouthMixin, FrameSSIM):
    """Mean per-image SSIM of the mouth region. update(preds, target, landmarks)."""
