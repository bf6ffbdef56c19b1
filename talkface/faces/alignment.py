"""Align a face to the canonical template by a similarity transform, and undo it.

The transform (rotation + uniform scale + translation) is fitted on the STABLE points only —
eyes (36-47) and nose (27-35) — because they do not move when the person speaks: fitting the
mouth or jaw too would make the crop bob with every syllable. Matrices are 2x3 and map
original-image pixels to crop pixels (the convention of cv2.warpAffine).

Crop size: any even integer >= 64 (128 is the default, 256 the high-resolution option); the
template is defined in a unit square, so every size frames the face the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkface.errors import TalkfaceError
from talkface.faces.layout import STABLE
from talkface.faces.template import load_template

STABLE_POINTS = np.asarray(STABLE)  # nose bridge + nostrils, both eyes
MIN_CROP_SIZE = 64


def check_crop_size(crop_size: int) -> int:
    """`crop_size` if usable, else a TalkfaceError saying what is allowed."""
    if not isinstance(crop_size, (int, np.integer)) or crop_size < MIN_CROP_SIZE or crop_size % 2:
        raise TalkfaceError(
            f"crop size {crop_size!r} is not supported: use an even number of pixels >= {MIN_CROP_SIZE} "
            "(128 is the default, 256 the high-resolution option)"
        )
    return int(crop_size)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (no reflection) taking `src` points onto `dst`; 2x3.

    (..., N, 2) points give (..., 2, 3) matrices. In 2-D the optimum has a closed form (the
    points as complex numbers: dst ~ z * src + t), equal to Umeyama's (1991) SVD solution to
    rounding, and ~10x cheaper per call: preparation fits two per frame.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=-2), dst.mean(axis=-2)
    src_c, dst_c = src - src_mean[..., None, :], dst - dst_mean[..., None, :]
    variance = (src_c**2).sum(axis=(-2, -1))
    if np.any(variance <= 1e-12 * src.shape[-2]):
        raise ValueError("cannot fit a similarity transform to coincident points")
    real = (src_c * dst_c).sum(axis=(-2, -1)) / variance  # scale * cos(angle)
    imag = (src_c[..., 0] * dst_c[..., 1] - src_c[..., 1] * dst_c[..., 0]).sum(axis=-1) / variance
    matrix = np.empty(src.shape[:-2] + (2, 3))
    matrix[..., 0, 0], matrix[..., 0, 1] = real, -imag
    matrix[..., 1, 0], matrix[..., 1, 1] = imag, real
    matrix[..., :, 2] = dst_mean - np.einsum("...ij,...j->...i", matrix[..., :, :2], src_mean)
    return matrix


def estimate_alignment(landmarks: np.ndarray, crop_size: int = 128) -> np.ndarray:
    """The 2x3 matrix taking image pixels to `crop_size` crop pixels, from the stable points.

    (T, 68, 2) landmarks give (T, 2, 3) matrices in one call."""
    template = load_template(check_crop_size(crop_size))
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape[-2:] != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {landmarks.shape}")
    return similarity_transform(landmarks[..., STABLE_POINTS, :], template[STABLE_POINTS])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2) points; keeps float32 for float32 input."""
    points = np.asarray(points)
    out = points @ matrix[:, :2].T + matrix[:, 2]
    return out.astype(points.dtype if points.dtype.kind == "f" else np.float64)


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse 2x3 affine matrix (crop pixels back to image pixels)."""
    linear = np.linalg.inv(np.asarray(matrix, dtype=np.float64)[:, :2])
    return np.hstack([linear, -linear @ np.asarray(matrix, dtype=np.float64)[:, 2:]])


def transform_scale(matrix: np.ndarray) -> float:
    """The uniform scale factor of a similarity matrix (crop pixels per image pixel)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def warp_to_crop(
    image: np.ndarray, matrix: np.ndarray, crop_size: int = 128, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """Resample `image` into the `crop_size` square crop given by `matrix`.

    When the crop shrinks the face a lot, the image is first reduced with area averaging:
    bilinear sampling alone would alias (jagged edges, shimmering across frames).
    """
    crop_size = check_crop_size(crop_size)
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = transform_scale(matrix)
    if scale < 0.75:
        height, width = image.shape[:2]
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        image_small = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        # Map small-image pixels to original pixels (pixel centres at integer coordinates).
        fx, fy = width / small[0], height / small[1]
        to_original = np.array([[fx, 0, (fx - 1) / 2], [0, fy, (fy - 1) / 2], [0, 0, 1]])
        matrix = matrix @ to_original
        image = image_small
    return cv2.warpAffine(image, matrix, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=border)


def align_face(image: np.ndarray, landmarks: np.ndarray, crop_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The aligned `crop_size` face crop of `image` and the 2x3 image-to-crop matrix."""
    matrix = estimate_alignment(landmarks, crop_size)
    return warp_to_crop(image, matrix, crop_size), matrix


def feather_mask(crop_size: int, feather: float = 0.1) -> np.ndarray:
    """A (crop_size, crop_size) float32 mask: 1 inside, ramping linearly to 0 at the crop's edge.

    `feather` is the ramp's width as a fraction of the crop size (0 gives a hard edge).
    """
    ramp_width = max(feather * crop_size, 1e-6)
    coords = np.arange(crop_size, dtype=np.float32) + 0.5  # distance of pixel centres to the edge
    edge = np.minimum(coords, crop_size - coords)
    ramp = np.clip(edge / ramp_width, 0.0, 1.0)
    return np.minimum(ramp[:, None], ramp[None, :])


def paste_back(
    image: np.ndarray,
    crop: np.ndarray,
    matrix: np.ndarray,
    feather: float = 0.1,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Put `crop` (e.g. a generated face) back into `image` where `matrix` took it from.

    The crop is warped back with the inverse transform and blended through a feathered mask
    (`mask` in crop pixels, values 0..1, overrides the default square `feather_mask`), so no
    seam shows. Returns a new image of `image`'s shape and dtype.
    """
    height, width = image.shape[:2]
    crop_size = crop.shape[0]
    if mask is None:
        mask = feather_mask(crop_size, feather)
    # WARP_INVERSE_MAP: for every image pixel, sample the crop at matrix @ pixel.
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    matrix = np.asarray(matrix, dtype=np.float64)
    warped = cv2.warpAffine(crop, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    weight = cv2.warpAffine(mask.astype(np.float32), matrix, (width, height), flags=flags, borderValue=0.0)
    if image.ndim == 3:
        weight = weight[..., None]
    blended = image.astype(np.float32) * (1.0 - weight) + warped.astype(np.float32) * weight
    if np.issubdtype(image.dtype, np.integer):
        blended = np.clip(np.rint(blended), np.iinfo(image.dtype).min, np.iinfo(image.dtype).max)
    return blended.astype(image.dtype)


def smooth_transforms(matrices: np.ndarray, window: int = 5) -> np.ndarray:
    """Centred moving average of per-frame (T, 2, 3) similarity matrices over `window` frames
    (an even window is rounded up to the next odd number; 1 or less returns a copy).

    Landmark jitter makes per-frame crops shake; averaging the matrices (a sum of similarity
    matrices is still a similarity) steadies them. Near the ends the window shrinks instead of
    padding, so the first and last frames are not pulled toward copies of themselves.
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.ndim != 3 or matrices.shape[1:] != (2, 3):
        raise ValueError(f"expected (T, 2, 3) matrices, got {matrices.shape}")
    if window <= 1 or len(matrices) <= 1:
        return matrices.copy()
    half = window // 2
    flat = matrices.reshape(len(matrices), 6)
    cumulative = np.vstack([np.zeros((1, 6)), np.cumsum(flat, axis=0)])
    index = np.arange(len(matrices))
    start = np.clip(index - half, 0, len(matrices))
    stop = np.clip(index + half + 1, 0, len(matrices))
    averaged = (cumulative[stop] - cumulative[start]) / (stop - start)[:, None]
    return averaged.reshape(-1, 2, 3)
