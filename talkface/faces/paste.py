"""Paste many generated crops into the same still photo, fast.

`paste_back` warps a crop over the whole image and blends every pixel. For a video made from one
photo the transform never changes, so `FacePaster` works out once which part of the photo the
crop covers and the blend mask there, and then only resamples and blends that region per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkface.faces.alignment import feather_mask, invert, transform_points


class FacePaster:
    """`FacePaster(photo, matrix, crop_size).paste(crop)` → the photo with `crop` blended in."""

    def __init__(self, image: np.ndarray, matrix: np.ndarray, crop_size: int, feather: float = 0.1) -> None:
        self.image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        corners = np.array([[0, 0], [crop_size, 0], [0, crop_size], [crop_size, crop_size]], np.float64)
        in_image = transform_points(corners, invert(matrix))
        x0, y0 = np.floor(in_image.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(in_image.max(axis=0)).astype(int) + 2
        self.x0, self.y0 = max(int(x0), 0), max(int(y0), 0)
        self.x1, self.y1 = min(int(x1), width), min(int(y1), height)
        # Region pixel (u, v) is image pixel (u + x0, v + y0).
        offset = np.array([[1, 0, self.x0], [0, 1, self.y0], [0, 0, 1]], np.float64)
        self.matrix = np.asarray(matrix, np.float64) @ offset
        self.size = (self.x1 - self.x0, self.y1 - self.y0)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        mask = feather_mask(crop_size, feather)
        weight = cv2.warpAffine(mask, self.matrix, self.size, flags=flags, borderValue=0.0)[..., None]
        self.weight = weight.astype(np.float32)
        region = self.image[self.y0 : self.y1, self.x0 : self.x1].astype(np.float32)
        self.background = region * (1.0 - self.weight)

    def paste(self, crop: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 crop → a new uint8 image of the photo's shape."""
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        warped = cv2.warpAffine(crop, self.matrix, self.size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        blended = self.background + warped.astype(np.float32) * self.weight
        out = self.image.copy()
        out[self.y0 : self.y1, self.x0 : self.x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        return out
