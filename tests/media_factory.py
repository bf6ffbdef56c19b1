"""Write small real media files (wav, flac, mp3, mp4 at any rate) for the tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CONTAINERS = {".wav": ("wav", "pcm_s16le", "s16"), ".flac": ("flac", "flac", "s16"), ".mp3": ("mp3", "libmp3lame", "fltp")}


def tone(seconds: float, rate: int, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write_audio_file(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    """Encode mono `samples` (duplicated to `channels`) with the codec the suffix implies."""
    container_format, codec, sample_format = CONTAINERS[path.suffix]
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        data = np.repeat(samples[None, :], channels, axis=0)
        if sample_format == "s16":
            data = (np.clip(data, -1, 1) * 32767).astype(np.int16)
            data = data.T.reshape(1, -1)  # packed
        frame_size = 1152
        for start in range(0, data.shape[1] // (channels if sample_format == "s16" else 1), frame_size):
            if sample_format == "s16":
                chunk = data[:, start * channels : (start + frame_size) * channels]
            else:
                chunk = np.ascontiguousarray(data[:, start : start + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def numbered_frames(count: int, size: int = 64) -> np.ndarray:
    """Frames whose brightness encodes their index (0, 4, 8, ...), easy to recognise after coding."""
    values = (np.arange(count) * 4 % 256).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (count, size, size, 3)).copy()
