"""Read a face photo of any common format, mode and bit depth as 8-bit RGB.

- Every Pillow mode becomes RGB: palette ("P", "PA"), grey ("L", "LA", "1"), CMYK, YCbCr, and the
  high-bit-depth modes ("I;16*", "I", "F": 16-bit grey PNG and TIFF, 32-bit and float TIFF), which
  Pillow's own `convert` would clip to white; those are scaled down to 8 bits instead.
- Transparent parts are composited on white; the image is turned upright per its EXIF.
- Size: up to MAX_PIXELS (100 megapixels, about 300 MB as RGB) an image is decoded as it is. A
  larger JPEG is decoded at 1/2, 1/4 or 1/8 scale by the JPEG decoder itself (`draft`), which
  never holds the full-size image, so a camera's 200-megapixel photo still works; a face photo
  needs far fewer pixels (generation shrinks it to --max-side anyway). A larger image of any
  other format would have to be decoded at full size first, so it is refused, with its size in
  the message. This replaces Pillow's decompression-bomb guard, which raises (a traceback)
  above 179 megapixels and warns above 89.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from talkface.errors import MediaError
from talkface.media.opening import check_file

MAX_PIXELS = 100_000_000
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def read_image(path: str | Path) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array, upright per EXIF, transparent parts made white."""
    path = check_file(path)
    try:
        with _no_bomb_guard(), Image.open(path) as image:
            image = _limit_size(image, path)
            image = ImageOps.exif_transpose(image)
            return to_rgb8(image, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise MediaError(f"{path}: not a readable image ({error})") from None
    except Image.DecompressionBombError as error:  # only if another thread restored the guard
        raise MediaError(f"{path}: too large to read safely ({error})") from None


def to_rgb8(image: Image.Image, path: str | Path = "image") -> np.ndarray:
    """Any Pillow image as an (H, W, 3) uint8 RGB array (alpha composited on white)."""
    if image.mode in HIGH_DEPTH_MODES:
        image = Image.fromarray(_to_uint8(np.asarray(image), image.mode), mode="L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    try:
        rgb = image.convert("RGB")
    except ValueError as error:  # e.g. LAB or HSV TIFFs
        raise MediaError(f"{path}: cannot convert its {image.mode} colours to RGB ({error}); save it as RGB") from None
    return np.asarray(rgb, dtype=np.uint8).copy()


def _to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Grey values of a high-depth mode to 0..255: 16-bit by /257; 32-bit integers as 8-bit or
    16-bit by their range; floats in 0..1 by x255; any other range stretched to 0..255."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, 0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode.startswith("I;16"):
        scaled = values / 257.0
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    elif low >= 0 and high <= 255:
        scaled = values
    elif low >= 0 and high <= 65535:
        scaled = values / 257.0
    else:
        scaled = (values - low) * (255.0 / max(high - low, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _limit_size(image: Image.Image, path: Path) -> Image.Image:
    width, height = image.size
    pixels = width * height
    if pixels <= MAX_PIXELS:
        return image
    if image.format == "JPEG":
        for scale in (2, 4, 8):
            if pixels / scale**2 <= MAX_PIXELS:
                # The decoder picks the largest reduction that keeps at least the requested size.
                image.draft(image.mode, (-(-width // scale), -(-height // scale)))
                return image
    raise MediaError(
        f"{path}: {width}x{height} pixels ({pixels / 1e6:.0f} megapixels) is too large to read safely "
        f"(limit {MAX_PIXELS // 1_000_000} megapixels{'' if image.format == 'JPEG' else ' for ' + str(image.format)}); "
        "shrink it first, e.g. to 2000 pixels on the long side"
    )


@contextlib.contextmanager
def _no_bomb_guard():
    """Pillow's decompression-bomb check off while opening: `_limit_size` decides instead."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved
