"""JPEG coding of aligned crops: the prepared dataset stores frames this way (~10x smaller)."""

from __future__ import annotations

import cv2
import numpy as np


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def decode_jpeg(data) -> np.ndarray:
    """RGB uint8 from JPEG bytes (bytes, memoryview or a uint8 array)."""
    bgr = cv2.imdecode(np.frombuffer(memoryview(data), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
