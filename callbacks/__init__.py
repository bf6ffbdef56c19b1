"""Lightning callbacks."""

from callbacks.video_samples import VideoSamples

__all__ = ["VideoSamples"]
