"""The default, offline landmark backend: dlib's HOG face detector + its 68-point predictor.

The predictor file ships with the `face-recognition-models` wheel. We locate it with
`importlib.util.find_spec` instead of importing that package, whose `__init__` imports
`pkg_resources` (gone from recent setuptools).

The same wheel ships dlib's CNN (MMOD) face detector, which finds tilted (roll ~45 deg), small
and faint faces that HOG misses, at 20-100x HOG's cost (~0.1 s on a 160 px frame, ~1.3 s at
640 px). It is only `detect_fallback`: preparation tries it on a few frames where HOG found
nothing; `detect` (generation, metrics, tracking) stays HOG-only and fast.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import dlib
import numpy as np

from talkface.errors import MissingWeightsError
from talkface.faces.landmarks import FaceBox, LandmarkExtractor, check_image

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"

# The CNN fallback sees the frame rescaled so its longer side is CNN_SIDE (x2 at most): small
# frames are upsampled (MMOD's smallest face is ~80 px), large ones shrunk (its cost grows with
# the pixels; a face that is 1/10 of a 1280 px frame is still ~64 px at 640).
CNN_SIDE = 640
CNN_MAX_SCALE = 2.0

# HOG misses faces under ~80 px at the image's own scale: when nothing is found we retry with
# the image upsampled once (x2), and twice (x4) for images this small or smaller (longer side),
# where a face cannot be big. Bigger images stop at one upsample: x4 of a large frame is slow.
TINY_IMAGE_SIDE = 320

# Minimum HOG score of a face other than the best one (a real second face scores ~0.7 and up).
SECOND_FACE_SCORE = 0.3


def predictor_path() -> Path:
    """Where `face-recognition-models` keeps the 68-point predictor, or a MissingWeightsError."""
    return _model_path(PREDICTOR_FILE, "68-point landmark model")


def cnn_detector_path() -> Path:
    """Where `face-recognition-models` keeps dlib's CNN face detector, or a MissingWeightsError."""
    return _model_path(CNN_DETECTOR_FILE, "CNN face detector")


def _model_path(filename: str, what: str) -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            f"dlib's {what} is missing: pip install face-recognition-models (it ships models/{filename})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise MissingWeightsError(
            f"dlib's {what} is missing: {path} does not exist; "
            "reinstall it with pip install --force-reinstall face-recognition-models"
        )
    return path


class DlibExtractor(LandmarkExtractor):
    """HOG detection (upsampling for small faces) and the 68-point shape predictor; CPU only."""

    name = "dlib"

    def __init__(self, predictor: str | Path | None = None, max_upsample: int | None = None):
        """`predictor`: another .dat file; `max_upsample`: cap on the retries (default by size)."""
        path = Path(predictor) if predictor is not None else predictor_path()
        if not path.is_file():
            raise MissingWeightsError(f"dlib landmark model {path} does not exist: give an existing .dat file")
        self.max_upsample = max_upsample
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(path))
        self._cnn = None  # loaded on the first fallback: most clips never need it

    def upsample_steps(self, image: np.ndarray) -> tuple[int, ...]:
        """How many x2 upsamplings to try, in order, until a face is found."""
        steps = (0, 1, 2) if max(image.shape[:2]) <= TINY_IMAGE_SIDE else (0, 1)
        if self.max_upsample is not None:
            steps = tuple(s for s in steps if s <= self.max_upsample) or (0,)
        return steps

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Face boxes, best score first. At its default threshold HOG also reports weak false
        positives (clothing, backgrounds: scores ~0-0.3) beside a real face, which would make
        every frame "several faces"; so boxes other than the best must score SECOND_FACE_SCORE."""
        image = check_image(image)
        for upsample in self.upsample_steps(image):
            rects, scores, _ = self._detector.run(image, upsample, 0.0)  # boxes in original pixels
            if len(rects):
                ranked = sorted(zip(scores, rects, strict=False), key=lambda pair: -pair[0])
                kept = [ranked[0][1]] + [r for score, r in ranked[1:] if score >= SECOND_FACE_SCORE]
                # dlib's right/bottom are inclusive pixel indices; +1 gives the box's edge.
                return [(float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1)) for r in kept]
        return []

    def detect_fallback(self, image: np.ndarray) -> list[FaceBox]:
        """Faces found by dlib's CNN (MMOD) detector, most confident first; for the frames where
        HOG found nothing (tilted heads, small or faint faces). Slow: see CNN_SIDE."""
        image = check_image(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if self._cnn is None:
            self._cnn = dlib.cnn_face_detection_model_v1(str(cnn_detector_path()))
        scale = min(CNN_SIDE / max(image.shape[:2]), CNN_MAX_SCALE)
        if abs(scale - 1) > 1e-3:
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = np.ascontiguousarray(cv2.resize(image, size, interpolation=interpolation))
        found = sorted(self._cnn(image, 0), key=lambda d: -d.confidence)
        return [
            tuple(float(v) / scale for v in (d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1))
            for d in found
        ]

    def fit(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        image = check_image(image)
        left, top, right, bottom = (int(round(v)) for v in box)
        shape = self._predictor(image, dlib.rectangle(left, top, right - 1, bottom - 1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
