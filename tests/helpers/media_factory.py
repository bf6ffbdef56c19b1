"""Write small real media files (wav, flac, mp3, mp4 at any rate) for the tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CONTAINERS = {
    ".wav": ("wav", "pcm_s16le", "s16"),
    ".flac": ("flac", "flac", "s16"),
    ".mp3": ("mp3", "libmp3lame", "fltp"),
}


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


def astronaut_face(size: int = 256) -> np.ndarray:
    """A real face photo (scikit-image's astronaut), face-centred, `size` square."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut()[20:260, 110:350], (size, size), interpolation=cv2.INTER_AREA)


def face_clip(path: Path, frames: int = 29, seed: int = 0, with_audio: bool = True, size: int = 256) -> Path:
    """A real-face mp4 with gentle head motion and a tone: a stand-in talking-face clip."""
    import cv2

    rng = np.random.default_rng(seed)
    face = astronaut_face(size)
    drift = np.cumsum(rng.normal(0, 0.6, (frames, 2)), axis=0)
    video = np.stack(
        [
            cv2.warpAffine(face, np.float32([[1, 0, dx], [0, 1, dy]]), (size, size), borderMode=cv2.BORDER_REPLICATE)
            for dx, dy in drift
        ]
    )
    audio = tone(frames / 25, 16000, 200 + 40 * seed, 0.3) if with_audio else None
    return write_mp4_file(path, video, audio)


def write_mp4_file(path: Path, frames: np.ndarray, audio: np.ndarray | None) -> Path:
    from talkface.media import write_mp4

    return write_mp4(path, frames, audio)


def lrw_tree(root: Path, words: dict[str, dict[str, int]], frames: int = 29) -> Path:
    """An LRW-layout tree of face clips: {"ABOUT": {"train": 2, "val": 1}} → ABOUT/train/ABOUT_00001.mp4 + .txt."""
    seed = 0
    for word, splits in words.items():
        for split, count in splits.items():
            for index in range(1, count + 1):
                clip = root / word / split / f"{word}_{index:05d}.mp4"
                face_clip(clip, frames=frames, seed=seed)
                duration = 0.2 + 0.04 * (seed % 8)
                clip.with_suffix(".txt").write_text(
                    f"Text:  {word}\nConf:  1.0\n\nWORD  {word}\nDuration: {duration:.2f} seconds\n"
                )
                seed += 1
    return root
