"""The landmark-extractor interface (detect a face, fit 68 points) and the backend factory.

A backend only has to say where faces are (`detect`) and where the 68 points of one face are
(`fit`); the policy shared by all backends — no face is a user error, several faces means the
largest one, with a warning — lives once, in `LandmarkExtractor.landmarks`.
"""

from __future__ import annotations

import importlib
import warnings
from abc import ABC, abstractmethod

import numpy as np

from talkface.errors import NoFaceError, TalkfaceError

NUM_LANDMARKS = 68

# (left, top, right, bottom) in pixels of the image given to `detect`.
FaceBox = tuple[float, float, float, float]


class SeveralFacesWarning(UserWarning):
    """More than one face was found; the largest was used (filter this category to silence it)."""


class LandmarkExtractor(ABC):
    """Finds faces and fits the standard 68-point (iBUG 300-W) landmarks to one of them."""

    name: str = "abstract"

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Boxes of every face found in an (H, W) or (H, W, 3) uint8 RGB image; [] when none."""

    @abstractmethod
    def fit(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """The (68, 2) float32 (x, y) pixel coordinates of the face inside `box`."""

    def detect_fallback(self, image: np.ndarray) -> list[FaceBox]:
        """A slower, sturdier detector to try where `detect` found nothing (small, tilted or faint
        faces); [] for backends that have none. Callers budget it: it may cost 10-100x `detect`."""
        return []

    def landmarks(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """The 68 landmarks of the largest face in `image`; `name` is used in messages."""
        image = check_image(image)
        boxes = self.detect(image)
        if not boxes:
            raise NoFaceError(
                f"no face found in {name}: use an image with one clear, roughly frontal, "
                "well-lit face at least ~60 px wide"
            )
        if len(boxes) > 1:
            warnings.warn(f"{len(boxes)} faces found in {name}; using the largest", SeveralFacesWarning, stacklevel=2)
        return self.fit(image, largest_box(boxes))


def largest_box(boxes: list[FaceBox]) -> FaceBox:
    """The box with the largest area (the main speaker when a photo holds several people)."""
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def check_image(image: np.ndarray) -> np.ndarray:
    """A contiguous uint8 (H, W) or (H, W, 3) array; an alpha channel is dropped.

    Wrong types are programming errors (ValueError), not user mistakes: files are read through
    `talkface.media.read_image`, which already gives RGB uint8.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    return np.ascontiguousarray(image)


# Backend name -> "module:class"; imported on demand so that `dlib` users never import torch.
BACKENDS = {
    "dlib": "talkface.faces.dlib_backend:DlibExtractor",
    "face_alignment": "talkface.faces.fan_backend:FanExtractor",
}
ALIASES = {"fan": "face_alignment"}

_extractors: dict[tuple, LandmarkExtractor] = {}


def get_extractor(name: str = "dlib", **kwargs) -> LandmarkExtractor:
    """The landmark backend `name`, built once per process and per set of arguments.

    Building a backend loads model files (dlib's predictor ~100 MB, FAN's networks), so
    preparation workers call this per clip and get the cached instance.
    """
    key_name = ALIASES.get(name, name)
    if key_name not in BACKENDS:
        valid = ", ".join(BACKENDS)  # the canonical names only (what every command's --backend offers)
        raise TalkfaceError(f"unknown landmark backend {name!r}: choose one of {valid}")
    key = (key_name, tuple(sorted(kwargs.items())))
    if key not in _extractors:
        module_name, class_name = BACKENDS[key_name].split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        _extractors[key] = cls(**kwargs)
    return _extractors[key]


def extractor_loaded(name: str = "dlib") -> bool:
    """Whether this process already built the backend `name` (with default arguments)."""
    return (ALIASES.get(name, name), ()) in _extractors


def clear_extractor_cache() -> None:
    """Forget the cached backends (tests that change TORCH_HOME or model files need this)."""
    _extractors.clear()
