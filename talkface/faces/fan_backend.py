"""The FAN landmark backend (face_alignment 1.5), for machines that have its weights.

face_alignment has no weights-path argument: it loads its files from
`torch.hub.get_dir()/checkpoints` (`$TORCH_HOME/hub/checkpoints`) and downloads them there when
missing — which, offline, fails deep inside with a URLError. So we check for the files first
and raise one clear MissingWeightsError naming what to put where. The file names come from
face_alignment's own URL tables, so they follow the installed version:
  - 2DFAN4-11f355bf06.pth.tar — the 2D FAN (`api.models_urls['2DFAN-4']`, via its
    `load_file_from_url`, a state dict read with `torch.load(weights_only=True)`);
  - s3fd-619a316812.pth — the S3FD face detector (`detection.sfd.sfd_detector.models_urls`, via
    `torch.hub.load_state_dict_from_url`), only with `detector="sfd"`.

Detection: `detector="sfd"` (default) uses S3FD, the detector FAN was trained with (its boxes
match FAN's expected framing; it also finds profile and small faces). `detector="dlib"` needs
only the FAN file: faces are found with our dlib HOG detector (with upsampling) and the FAN
fits the points; face_alignment is then built with its dlib detector pointed at the CNN file
that face-recognition-models ships, so that it never downloads one on CUDA.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from talkface.errors import MissingWeightsError, TalkfaceError
from talkface.faces.landmarks import FaceBox, LandmarkExtractor, check_image

DETECTORS = ("sfd", "dlib")
BASE_URL = "https://www.adrianbulat.com/downloads/python-fan/"


def checkpoint_dir() -> Path:
    """Where face_alignment looks for its files: torch.hub.get_dir()/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_urls(detector: str = "sfd") -> dict[str, str]:
    """File name -> download URL of every file face_alignment loads for 2D landmarks."""
    from face_alignment.api import models_urls as fan_urls

    urls = [fan_urls["2DFAN-4"]]
    if detector == "sfd":
        from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls

        urls.append(sfd_urls["s3fd"])
    return {os.path.basename(urlparse(url).path): url for url in urls}


def check_weights(detector: str = "sfd") -> dict[str, Path]:
    """Paths of the needed weight files; MissingWeightsError naming any that are absent."""
    folder = checkpoint_dir()
    files = {name: folder / name for name in weight_urls(detector)}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise MissingWeightsError(
            f"face_alignment (FAN) weights are not on this machine: missing {', '.join(missing)} in "
            f"{folder}; download them from {BASE_URL} and put them in that folder (or set "
            "TORCH_HOME), or use the dlib landmark backend"
        )
    return files


class FanExtractor(LandmarkExtractor):
    """FAN 2D landmarks (face_alignment 1.5, no torch.compile) with S3FD or dlib HOG detection."""

    name = "face_alignment"

    def __init__(self, device: str | None = None, detector: str = "sfd", flip_input: bool = True):
        """`device`: "cpu", "cuda", ... (default: CUDA when available); `flip_input`: also run
        the mirrored crop and average, as face_alignment does by default (2x cost, steadier)."""
        if detector not in DETECTORS:
            raise TalkfaceError(f"unknown FAN face detector {detector!r}: choose one of {', '.join(DETECTORS)}")
        check_weights(detector)
        import face_alignment

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.detector = detector
        detector_kwargs = {}
        self._hog = None
        if detector == "dlib":
            from talkface.faces.dlib_backend import DlibExtractor, predictor_path

            self._hog = DlibExtractor()
            # On CUDA face_alignment's dlib detector loads a CNN model; give it the local copy.
            detector_kwargs["path_to_detector"] = str(predictor_path().with_name("mmod_human_face_detector.dat"))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*detector is deprecated.*")
            self._fa = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D,
                device=self.device,
                face_detector=detector,
                face_detector_kwargs=detector_kwargs,
                flip_input=flip_input,
                compile=False,  # compiling costs ~100 s and gains nothing on CPU
            )

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        image = _rgb(check_image(image))
        if self._hog is not None:
            return self._hog.detect(image)
        boxes = self._fa.face_detector.detect_from_image(image.copy())
        return [tuple(float(v) for v in box[:4]) for box in boxes]

    def fit(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        image = _rgb(check_image(image))
        # float64: face_alignment assigns the box-derived scale into a torch tensor, which
        # refuses numpy.float32 scalars.
        found = self._fa.get_landmarks_from_image(image, detected_faces=[np.asarray(box, dtype=np.float64)])
        return np.asarray(found[0], dtype=np.float32)[:, :2]


def _rgb(image: np.ndarray) -> np.ndarray:
    """FAN and S3FD take 3-channel RGB."""
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
