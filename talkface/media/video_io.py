"""Decode any video file to RGB frames at 25 fps plus its audio as 16 kHz mono float."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from av.video.reformatter import VideoReformatter

from talkface import FPS, SAMPLE_RATE
from talkface.errors import MediaError
from talkface.media.audio_io import AudioDecoder
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

        frames, times = [], []
        # One reformatter for the whole clip: `frame.to_ndarray(format=...)` builds a new colour
        # converter (an swscale context) for every frame, which costs ~4x the decoding itself.
        rgb = VideoReformatter()
        audio_decoder = AudioDecoder(audio) if audio is not None else None
        for packet in container.demux(*streams):
            if packet.stream is not video:
                audio_decoder.add(packet)
                continue
            for frame in packet.decode():
                frames.append(rgb.reformat(frame, format="rgb24").to_ndarray())
                times.append(float(frame.time) if frame.time is not None else None)
        if not frames:
            raise MediaError(f"{path}: the video stream holds no decodable frames")
        if video.frames and len(frames) < video.frames - 1:
            raise MediaError(f"{path}: truncated video, decoded {len(frames)} of the {video.frames} frames it declares")

        source_fps = float(video.average_rate or video.guessed_rate or fps)
        video_start = next((t for t in times if t is not None), 0.0)
        times = _fill_times(times, source_fps)
        out_frames = _resample_frames(frames, times, source_fps, fps)
        samples = None
        if audio_decoder is not None and not audio_decoder.empty:
            samples = _synced_audio(audio_decoder, video_start, sample_rate)
    return VideoClip(out_frames, samples, fps, sample_rate, source_fps)


def _fill_times(times: list[float | None], source_fps: float) -> np.ndarray:
    """Frame timestamps relative to the first frame; frames without one are spaced evenly."""
    start = next((t for t in times if t is not None), 0.0)
    filled = [(t - start) if t is not None else i / source_fps for i, t in enumerate(times)]
    return np.maximum.accumulate(np.asarray(filled, dtype=np.float64))


def _resample_frames(frames: list[np.ndarray], times: np.ndarray, source_fps: float, fps: float) -> np.ndarray:
    duration = times[-1] + 1.0 / source_fps
    count = max(1, int(round(duration * fps)))
    if count == len(frames) and abs(source_fps - fps) < 1e-3:
        return np.stack(frames)
    targets = np.arange(count) / fps + 1e-6
    picks = np.clip(np.searchsorted(times, targets, side="right") - 1, 0, len(frames) - 1)
    return np.stack([frames[i] for i in picks])


def _synced_audio(decoder: AudioDecoder, video_start: float, sample_rate: int) -> np.ndarray:
    audio = decoder.finish(sample_rate)
    start = decoder.start_time if decoder.start_time is not None else video_start
    offset = int(round((start - video_start) * sample_rate))
    if offset > 0:
        audio = np.concatenate([np.zeros(offset, np.float32), audio])
    elif offset < 0:
        audio = audio[-offset:]
    return np.ascontiguousarray(audio, dtype=np.float32)
