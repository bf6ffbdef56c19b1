"""Decode any video file to RGB frames at 25 fps plus its audio as 16 kHz mono float."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from talkface import FPS, SAMPLE_RATE
from talkface.errors import MediaError
from talkface.media.audio_io import finish_audio, mono_samples
from talkface.media.opening import open_media


@dataclass
class VideoClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB at `fps`
    audio: np.ndarray | None  # (N,) float32 mono at `sample_rate`; None when the file has none
    fps: float
    sample_rate: int
    source_fps: float

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def read_video(
    path: str | Path, fps: float = FPS, sample_rate: int = SAMPLE_RATE, with_audio: bool = True
) -> VideoClip:
    """Decode `path`, resampling the frame rate (nearest earlier frame) and the audio rate.

    Audio is kept in sync with the video: an audio stream that starts later than the video is
    padded with silence at the front, one that starts earlier is cut.
    """
    with open_media(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: has no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        audio = container.streams.audio[0] if (with_audio and container.streams.audio) else None
        streams = [s for s in (video, audio) if s is not None]

        frames, times, audio_chunks = [], [], []
        audio_start = None
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if packet.stream is video:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    times.append(float(frame.time) if frame.time is not None else None)
                else:
                    if audio_start is None and frame.time is not None:
                        audio_start = float(frame.time)
                    audio_chunks.append(mono_samples(frame))
        if not frames:
            raise MediaError(f"{path}: the video stream holds no decodable frames")

        source_fps = float(video.average_rate or video.guessed_rate or fps)
        times = _fill_times(times, source_fps)
        out_frames = _resample_frames(frames, times, source_fps, fps)
        samples = None
        if audio is not None and audio_chunks:
            samples = _synced_audio(
                np.concatenate(audio_chunks), audio, audio_start, times[0], sample_rate
            )
    return VideoClip(out_frames, samples, fps, sample_rate, source_fps)


def _fill_times(times: list[float | None], source_fps: float) -> np.ndarray:
    """Frame timestamps relative to the first frame; frames without one are spaced evenly."""
    start = next((t for t in times if t is not None), 0.0)
    filled = [
        (t - start) if t is not None else i / source_fps for i, t in enumerate(times)
    ]
    return np.maximum.accumulate(np.asarray(filled, dtype=np.float64))


def _resample_frames(
    frames: list[np.ndarray], times: np.ndarray, source_fps: float, fps: float
) -> np.ndarray:
    duration = times[-1] + 1.0 / source_fps
    count = max(1, int(round(duration * fps)))
    if count == len(frames) and abs(source_fps - fps) < 1e-3:
        return np.stack(frames)
    targets = np.arange(count) / fps + 1e-6
    picks = np.clip(np.searchsorted(times, targets, side="right") - 1, 0, len(frames) - 1)
    return np.stack([frames[i] for i in picks])


def _synced_audio(
    audio: np.ndarray,
    stream: av.audio.AudioStream,
    audio_start: float | None,
    video_start: float,
    sample_rate: int,
) -> np.ndarray:
    audio = finish_audio(audio, stream, sample_rate)
    offset = 0 if audio_start is None else int(round((audio_start - video_start) * sample_rate))
    if offset > 0:
        audio = np.concatenate([np.zeros(offset, np.float32), audio])
    elif offset < 0:
        audio = audio[-offset:]
    return np.ascontiguousarray(audio, dtype=np.float32)
