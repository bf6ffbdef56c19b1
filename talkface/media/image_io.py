"""Read a face photo of any common format as RGB uint8 (alpha composited on white)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from talkface.errors import MediaError
from talkface.media.opening import check_file


def read_image(path: str | Path) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array, upright per EXIF, transparent parts made white."""
    path = check_file(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as error:
        raise MediaError(f"{path}: not a readable image ({error})") from None
