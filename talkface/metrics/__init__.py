"""torchmetrics metrics of both stages, each DDP-correct (sum states) with a functional core.

Stage 1 (landmarks (B, T, 68, 2) normalised to [0, 1]; distances in pixels of a 256×256 crop):
`LandmarkDistance` (LMD, mouth or face), `LandmarkVelocityError`, `WordAccuracy`.
Stage 2 (images (B, 3, H, W) in [0, 1]): `FramePSNR`, `FrameSSIM`, `MouthPSNR`, `MouthSSIM`.
Real faces, end to end (generated clip against the real clip and the photo):
`MouthOpeningCorrelation` (re-detected landmarks of generated and real frames),
`UpperFacePSNR` (eyes–nose region against the photo), `SharpnessRatio` (face region, generated
over photo).
"""

from talkface.metrics.face_regions import landmark_boxes
from talkface.metrics.image_quality import (
    DEFAULT_BOX_FRACTION,
    FramePSNR,
    FrameSSIM,
    MouthPSNR,
    MouthSSIM,
    crop_boxes,
    frame_psnr,
    frame_ssim,
    mouth_boxes,
)
from talkface.metrics.landmark_distance import (
    POINT_SETS,
    LandmarkDistance,
    landmark_distance,
    landmark_distance_sum,
)
from talkface.metrics.mouth_opening import (
    MouthOpeningCorrelation,
    clip_correlations,
    mouth_opening,
    mouth_opening_correlation,
)
from talkface.metrics.sharpness import SharpnessRatio, laplacian_variance, sharpness_ratio
from talkface.metrics.upper_face import UpperFacePSNR, upper_face_psnr
from talkface.metrics.velocity_error import LandmarkVelocityError, landmark_velocity_error, velocity_error_sum
from talkface.metrics.word_accuracy import WordAccuracy, word_accuracy, word_accuracy_counts

__all__ = [
    "DEFAULT_BOX_FRACTION",
    "POINT_SETS",
    "FramePSNR",
    "FrameSSIM",
    "LandmarkDistance",
    "LandmarkVelocityError",
    "MouthOpeningCorrelation",
    "MouthPSNR",
    "MouthSSIM",
    "SharpnessRatio",
    "UpperFacePSNR",
    "WordAccuracy",
    "clip_correlations",
    "crop_boxes",
    "frame_psnr",
    "frame_ssim",
    "landmark_boxes",
    "landmark_distance",
    "landmark_distance_sum",
    "landmark_velocity_error",
    "laplacian_variance",
    "mouth_boxes",
    "mouth_opening",
    "mouth_opening_correlation",
    "sharpness_ratio",
    "upper_face_psnr",
    "velocity_error_sum",
    "word_accuracy",
    "word_accuracy_counts",
]
