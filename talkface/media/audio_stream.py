"""Decode audio in chunks, so that minutes of speech never sit in memory at once.

`read_audio` returns a whole file; generation from long recordings uses `stream_audio` instead:
FFmpeg's resampler (swresample) converts every decoded frame to float at the target rate as it
arrives, channels are averaged to mono, and chunks are handed on as soon as they are full. `probe_audio` is one cheap pass
that learns the length and the loudness before any work starts (to refuse silent or too-short
audio without writing anything).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from talkface import SAMPLE_RATE
from talkface.errors import MediaError
from talkface.media.audio_io import check_finite
from talkface.media.opening import open_media

# Samples held back at the end of the stream until we know where the signal really stops
# (AAC and MP3 decode to whole codec frames; the last packet's end time says how much is padding).
TAIL_HOLD = 4096


@dataclass(frozen=True)
class AudioSummary:
    samples: int  # at the probed sample rate
    sample_rate: int
    peak: float  # largest absolute sample, 0..1
    rms: float

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


def stream_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, chunk_samples: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Mono float32 chunks of `chunk_samples` (the last one shorter) of the file's first audio stream."""
    with open_media(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        stream = container.streams.audio[0]
        # Channels are kept through resampling and averaged here, as `read_audio` does
        # (swresample's own stereo-to-mono downmix adds them at -3 dB, i.e. louder).
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)
        pending: list[np.ndarray] = []
        buffered = 0
        emitted = 0
        end_pts = None
        for packet in container.demux(stream):
            if packet.pts is not None and packet.duration:
                end = packet.pts + packet.duration
                end_pts = end if end_pts is None else max(end_pts, end)
            for frame in packet.decode():
                frame.pts = None  # let the resampler count samples itself (no gaps from odd timestamps)
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().mean(axis=0))
                    check_finite(pending[-1], path)  # refused as in read_audio (probe_audio finds it before any work)
                    buffered += out.samples
            while buffered >= chunk_samples + TAIL_HOLD:
                chunk, pending, buffered = _take(pending, chunk_samples)
                emitted += len(chunk)
                yield chunk
        for out in resampler.resample(None):
            pending.append(out.to_ndarray().mean(axis=0))
            check_finite(pending[-1], path)
        rest = np.concatenate(pending) if pending else np.zeros(0, np.float32)
        if emitted + len(rest) == 0:
            raise MediaError(f"{path}: the audio stream holds no samples")
        true_length = _true_length(stream, end_pts, sample_rate)
        padding = emitted + len(rest) - (true_length or 0)
        if true_length and 0 < padding <= 2048 * sample_rate // (stream.rate or sample_rate) + 64:
            rest = rest[: max(true_length - emitted, 0)]  # codec padding only, never real signal
        for start in range(0, len(rest), chunk_samples):
            yield np.ascontiguousarray(rest[start : start + chunk_samples], dtype=np.float32)


def probe_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> AudioSummary:
    """Length and loudness of the audio of `path`, from one streaming pass."""
    samples, peak, energy = 0, 0.0, 0.0
    for chunk in stream_audio(path, sample_rate):
        samples += len(chunk)
        if len(chunk):
            peak = max(peak, float(np.abs(chunk).max()))
            energy += float(np.square(chunk, dtype=np.float64).sum())
    return AudioSummary(samples, sample_rate, peak, float(np.sqrt(energy / max(samples, 1))))


def _take(pending: list[np.ndarray], count: int) -> tuple[np.ndarray, list[np.ndarray], int]:
    joined = np.concatenate(pending)
    return np.ascontiguousarray(joined[:count], dtype=np.float32), [joined[count:]], len(joined) - count


def _true_length(stream: av.audio.AudioStream, end_pts: int | None, sample_rate: int) -> int | None:
    if end_pts is None or stream.time_base is None:
        return None
    start = max(stream.start_time or 0, 0)
    return int(round(float((end_pts - start) * stream.time_base) * sample_rate))
