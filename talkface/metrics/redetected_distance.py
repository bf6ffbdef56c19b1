"""LMD of generated frames: landmarks re-detected on the images vs the landmarks they were made from.

This is how a generator is judged on lip shape: a landmark detector (dlib by default) reads the
mouth it drew. Frames where no face is found fall back to a fit inside the target's face box and
are counted, so a generator cannot hide bad frames by making them undetectable.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from talkface.metrics.landmark_distance import landmark_distance_sum


class RedetectedLandmarkDistance(Metric):
    full_state_update = False

    def __init__(self, points: str = "mouth", scale: float = 256.0, backend: str = "dlib", **kwargs) -> None:
        super().__init__(**kwargs)
        self.points = points
        self.scale = scale
        self.backend = backend
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("frames", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("undetected", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, images: Tensor, target_landmarks: Tensor) -> None:
        """images: (B, 3, H, W) uint8 or float in [0, 1]; target_landmarks: (B, 68, 2) normalised."""
        detected, missed = redetect(images, target_landmarks, self.backend)
        total, count = landmark_distance_sum(
            detected[:, None].to(target_landmarks), target_landmarks[:, None], points=self.points, scale=self.scale
        )
        self.total += total.double()
        self.frames += count.double() if isinstance(count, Tensor) else float(count)
        self.undetected += float(missed)

    def compute(self) -> Tensor:
        return (self.total / self.frames.clamp_min(1)).float()

    def undetected_fraction(self) -> Tensor:
        return (self.undetected / self.frames.clamp_min(1)).float()


def redetect(images: Tensor, target_landmarks: Tensor, backend: str = "dlib") -> tuple[Tensor, int]:
    """(B, 68, 2) normalised landmarks found on `images`, and how many needed the fallback box."""
    from talkface.faces import get_extractor
    from talkface.faces.landmarks import largest_box

    extractor = get_extractor(backend)
    pixels = images.detach()
    if pixels.dtype != torch.uint8:
        pixels = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
    arrays = pixels.permute(0, 2, 3, 1).cpu().numpy()
    size = arrays.shape[1]
    out = np.zeros((len(arrays), 68, 2), np.float32)
    missed = 0
    for index, image in enumerate(arrays):
        boxes = extractor.detect(image)
        if boxes:
            box = largest_box(boxes)
        else:
            missed += 1
            points = target_landmarks[index].detach().cpu().numpy() * size
            (left, top), (right, bottom) = points.min(0), points.max(0)
            box = (float(left), float(top), float(right), float(bottom))
        out[index] = extractor.fit(image, box) / size
    return torch.from_numpy(out), missed
