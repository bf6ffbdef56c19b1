"""The pluggable loss registry and the built-in terms (importing this registers them)."""

from losses.adversarial import Adversarial, FeatureMatching
from losses.audio_landmark_sync import AudioLandmarkSync
from losses.base import LossTerm
from losses.composer import LossComposer
from losses.image_reconstruction import L1, AdaptiveReconstruction, mouth_mask
from losses.landmark_reconstruction import LandmarkReconstruction
from losses.mouth_opening import MouthOpening
from losses.perceptual import Perceptual
from losses.registry import LOSS_REGISTRY, build_loss, register_loss, registered_names, resolve_loss_class
from losses.sync_expert import SyncExpertLoss
from losses.temporal_residual import TemporalResidual
from losses.word_semantic import AudioWord, WordDetector, WordSemantic

__all__ = [
    "LOSS_REGISTRY",
    "L1",
    "AdaptiveReconstruction",
    "Adversarial",
    "FeatureMatching",
    "Perceptual",
    "mouth_mask",
    "AudioLandmarkSync",
    "AudioWord",
    "LandmarkReconstruction",
    "LossComposer",
    "LossTerm",
    "MouthOpening",
    "SyncExpertLoss",
    "TemporalResidual",
    "WordDetector",
    "WordSemantic",
    "build_loss",
    "register_loss",
    "registered_names",
    "resolve_loss_class",
]
