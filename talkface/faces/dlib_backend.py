"""The default, offline landmark backend: dlib's HOG face detector + its 68-point predictor.

The predictor file ships with the `face-recognition-models` wheel. We locate it with
`importlib.util.find_spec` instead of importing that package, whose `__init__` imports
`pkg_resources` (gone from recent setuptools).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dlib
import numpy as np

from talkface.errors import MissingWeightsError
from talkface.faces.landmarks import FaceBox, LandmarkExtractor, check_image

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"

# HOG misses faces under ~80 px at the image's own scale: when nothing is found we retry with
# the image upsampled once (x2), and twice (x4) for images this small or smaller (longer side),
# where a face cannot be big. Bigger images stop at one upsample: x4 of a large frame is slow.
TINY_IMAGE_SIDE = 320

# Minimum HOG score of a face other than the best one (a real second face scores ~0.7 and up).
SECOND_FACE_SCORE = 0.3


def predictor_path() -> Path:
    """Where `face-recognition-models` keeps the 68-point predictor, or a MissingWeightsError."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "dlib's 68-point landmark model is missing: pip install face-recognition-models "
            f"(it ships models/{PREDICTOR_FILE})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise MissingWeightsError(
            f"dlib's 68-point landmark model is missing: {path} does not exist; "
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

    def fit(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        image = check_image(image)
        left, top, right, bottom = (int(round(v)) for v in box)
        shape = self._predictor(image, dlib.rectangle(left, top, right - 1, bottom - 1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
