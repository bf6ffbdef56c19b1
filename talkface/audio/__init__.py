"""Audio features aligned to video frames."""

from talkface.audio.features import FeatureConfig, audio_windows, compute_features, frame_windows

__all__ = ["FeatureConfig", "audio_windows", "compute_features", "frame_windows"]
