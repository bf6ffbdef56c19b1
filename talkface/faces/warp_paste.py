"""Apply a warping generator's output at the photo's own resolution.

Pasting the 128-pixel crop back makes the whole face as soft as the crop. A warping generator
(`UNetGenerator(warp_reference=True)`) says more than its pixels: *how* it moved the photo (a
backward displacement field) and *where* it drew new pixels (the blend mask, high only inside
the mouth). So here the photo itself is warped by that field, resampled at full resolution, and
the network's pixels are blended in only where its mask asks for them: outside the mouth the
face stays as sharp as the photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkface.faces.paste import FacePaster


class WarpPaster(FacePaster):
    """`WarpPaster(photo, matrix, crop_size).paste_warp(field, generated, mask)` → the photo, moved."""

    def __init__(self, image: np.ndarray, matrix: np.ndarray, crop_size: int, feather: float = 0.1) -> None:
        super().__init__(image, matrix, crop_size, feather)
        self.crop_size = crop_size
        # Crop pixel displacements → region pixel displacements: the inverse of the linear part.
        self.to_region = np.linalg.inv(self.matrix[:, :2]).astype(np.float32)
        width, height = self.size
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        self.grid_x, self.grid_y = grid_x + self.x0, grid_y + self.y0

    def paste_warp(self, field: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """field (S, S, 2) backward displacement in [0, 1] crop units; generated (S, S, 3) uint8
        (the network's own pixels); mask (S, S) float in [0, 1] (their weight). Returns the photo
        with the face moved and the new pixels blended in, uint8 of the photo's shape."""
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        crop_pixels = np.ascontiguousarray(field, dtype=np.float32) * self.crop_size
        moved = cv2.warpAffine(crop_pixels, self.matrix, self.size, flags=flags, borderValue=(0.0, 0.0))
        moved = moved * self.weight  # fades to no motion at the crop's feathered edge
        displacement = moved @ self.to_region.T
        photo = cv2.remap(
            self.image,
            self.grid_x + displacement[..., 0],
            self.grid_y + displacement[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float32)
        drawn = cv2.warpAffine(generated, self.matrix, self.size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        weight = cv2.warpAffine(np.ascontiguousarray(mask, dtype=np.float32), self.matrix, self.size, flags=flags)
        weight = (weight * self.weight[..., 0])[..., None]
        blended = photo * (1.0 - weight) + drawn.astype(np.float32) * weight
        out = self.image.copy()
        out[self.y0 : self.y1, self.x0 : self.x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        return out
