"""Decode the audio of any file (wav, mp3, flac, aac, mp2 in any container) to 16 kHz mono float."""

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
        chunks = [mono_samples(frame) for frame in container.decode(stream)]
        if not chunks:
            raise MediaError(f"{path}: the audio stream holds no samples")
        return finish_audio(np.concatenate(chunks), stream, sample_rate)


def mono_samples(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float32 mono in [-1, 1], channels averaged."""
    samples = frame.to_ndarray()
    if samples.dtype.kind in "iu":  # integer PCM
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    if not frame.format.is_planar:  # packed: (1, n * channels) → (channels, n)
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    return samples.astype(np.float32).mean(axis=0)


def finish_audio(audio: np.ndarray, stream: av.audio.AudioStream, sample_rate: int) -> np.ndarray:
    """Cut codec padding beyond the stream's declared length, then resample.

    AAC decodes to a whole number of codec frames (32768 samples for 32000 written). In MP4/MOV
    the stream's declared duration comes from the sample table and edit list, so it is the true
    length; elsewhere (MPEG-PS, ...) it is only an estimate and the decoded length is kept.
    """
    rate = stream.rate or stream.codec_context.sample_rate
    if _exact_duration(stream):
        declared = int(round(float(stream.duration * stream.time_base) * rate))
        if 0 < declared < len(audio):
            audio = audio[:declared]
    if rate != sample_rate:
        audio = AF.resample(torch.from_numpy(np.ascontiguousarray(audio)), rate, sample_rate).numpy()
    return np.ascontiguousarray(audio, dtype=np.float32)


def _exact_duration(stream: av.audio.AudioStream) -> bool:
    format_names = stream.container.format.name.split(",")
    return (
        stream.duration is not None
        and stream.time_base is not None
        and ("mp4" in format_names or "mov" in format_names)
    )
