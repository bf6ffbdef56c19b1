"""Decode the audio of any file (wav, mp3, flac, aac, mp2 in any container) to 16 kHz mono float.

Audio holding NaN or infinite samples is refused with a MediaError (here, in `read_video` and in
`stream_audio` alike), never cleaned silently.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
import torchaudio.functional as AF

from talkface import SAMPLE_RATE
from talkface.errors import MediaError
from talkface.media.opening import open_media


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The file's first audio stream as float32 mono samples at `sample_rate`."""
    with open_media(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        stream = container.streams.audio[0]
        decoder = AudioDecoder(stream)
        for packet in container.demux(stream):
            decoder.add(packet)
        if decoder.empty:
            raise MediaError(f"{path}: the audio stream holds no samples")
        return decoder.finish(sample_rate)


class AudioDecoder:
    """Decodes one stream's packets to mono float and knows where the stream truly ends.

    AAC decodes to whole codec frames (32768 samples for 32000 written); the last packet's
    timestamp and duration say where the real signal stops, so the padding after it is cut.
    """

    def __init__(self, stream: av.audio.AudioStream) -> None:
        self.stream = stream
        self.rate = stream.rate or stream.codec_context.sample_rate
        self.start_time: float | None = None  # seconds, of the first decoded sample
        self._chunks: list[np.ndarray] = []
        self._end_pts: int | None = None

    @property
    def empty(self) -> bool:
        return not self._chunks

    def add(self, packet: av.Packet) -> None:
        if packet.pts is not None and packet.duration:
            end = packet.pts + packet.duration
            self._end_pts = end if self._end_pts is None else max(self._end_pts, end)
        for frame in packet.decode():
            if self.start_time is None and frame.time is not None:
                self.start_time = float(frame.time)
            self._chunks.append(mono_samples(frame))

    def finish(self, sample_rate: int) -> np.ndarray:
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        check_finite(audio, self.stream.container.name)
        true_length = self._true_length()
        padding = len(audio) - (true_length or len(audio))
        if true_length and 0 < padding <= 2048:  # cut codec padding only, never real signal
            audio = audio[:true_length]
        if self.rate != sample_rate:
            audio = AF.resample(torch.from_numpy(np.ascontiguousarray(audio)), self.rate, sample_rate).numpy()
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _true_length(self) -> int | None:
        if self._end_pts is None or self.stream.time_base is None:
            return None
        start = self.stream.start_time or 0
        return int(round(float((self._end_pts - max(start, 0)) * self.stream.time_base) * self.rate))


def check_finite(samples: np.ndarray, path: str | Path) -> None:
    """Refuse audio holding NaN or infinite samples (a broken float file): nothing downstream
    can use them, and quietly zeroing them would hide gaps in the speech."""
    if not np.isfinite(samples).all():
        raise MediaError(
            f"{path}: the audio holds NaN or infinite samples (a broken float recording); "
            "export it again, e.g. as 16-bit PCM wav"
        )


def mono_samples(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float32 mono in [-1, 1], channels averaged."""
    samples = frame.to_ndarray()
    if samples.dtype.kind in "iu":  # integer PCM
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    if not frame.format.is_planar:  # packed: (1, n * channels) → (channels, n)
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    return samples.astype(np.float32).mean(axis=0)
