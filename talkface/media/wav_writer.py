"""Write 16-bit PCM wav files (speech made by talkface itself: demo and benchmark inputs)."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """Mono float samples in [-1, 1] → 16-bit wav, written atomically."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype("<i2")
    with wave.open(str(partial), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    os.replace(partial, path)
    return path
