"""The one photo a video is made from: read, sized for video, face found and aligned."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from talkface.faces import SeveralFacesWarning, estimate_alignment, get_extractor, transform_points, warp_to_crop
from talkface.media.image_io import read_image


@dataclass
class Photo:
    image: np.ndarray  # (H, W, 3) uint8, even sides: the frame every output frame starts from
    name: str  # for messages
    notes: list[str]  # things the user should know (resized)


@dataclass
class FaceInput:
    image: np.ndarray  # (H, W, 3) uint8, even sides: the frame every output frame starts from
    matrix: np.ndarray  # 2x3, image pixels → crop pixels
    crop: np.ndarray  # (S, S, 3) uint8 aligned face
    landmarks: np.ndarray  # (68, 2) normalised [0, 1] in the crop
    notes: list[str]  # things the user should know (several faces, resized)


def load_face(path: str | Path | np.ndarray, crop_size: int, backend: str = "dlib", max_side: int = 1024) -> FaceInput:
    """Detect the (largest) face of a photo and align it to the template at `crop_size`."""
    photo = read_photo(path, max_side)
    points, notes = find_landmarks(photo.image, photo.name, backend)
    return align_face(photo, points, notes, crop_size)


def read_photo(path: str | Path | np.ndarray, max_side: int = 1024) -> Photo:
    """The photo as video frames need it: at most `max_side` on its longer side, even sides."""
    notes = []
    image = path if isinstance(path, np.ndarray) else read_image(path)
    name = "image" if isinstance(path, np.ndarray) else str(path)
    height, width = image.shape[:2]
    if max(height, width) > max_side:
        scale = max_side / max(height, width)
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        notes.append(
            f"photo resized from {width}x{height} to {image.shape[1]}x{image.shape[0]} (--max-side {max_side})"
        )
    # H.264 needs even sides: repeat the last row/column when one is odd.
    pad_y, pad_x = image.shape[0] % 2, image.shape[1] % 2
    if pad_y or pad_x:
        image = np.pad(image, ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
    return Photo(image, name, notes)


def find_landmarks(image: np.ndarray, name: str, backend: str = "dlib") -> tuple[np.ndarray, list[str]]:
    """The 68 landmarks of the photo's largest face, and a note when it has several."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SeveralFacesWarning)
        points = get_extractor(backend).landmarks(image, name=name)
    return points, [str(w.message) for w in caught if issubclass(w.category, SeveralFacesWarning)]


def align_face(photo: Photo, points: np.ndarray, notes: list[str], crop_size: int) -> FaceInput:
    """The face of `photo` with landmarks `points`, aligned to the template at `crop_size`."""
    matrix = estimate_alignment(points, crop_size)
    crop = warp_to_crop(photo.image, matrix, crop_size)
    landmarks = transform_points(points.astype(np.float64), matrix) / crop_size
    return FaceInput(photo.image, matrix, crop, landmarks.astype(np.float32), photo.notes + notes)
