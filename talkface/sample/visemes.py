"""From espeak phonemes to smooth mouth-shape trajectories at the video frame rate.

Each phoneme has a target mouth shape (openness, spread, rounding) and a dominance: how strongly
it pulls the mouth towards its target. Following Cohen & Massaro's coarticulation model, the
shape at time t is the dominance-weighted mean of all targets, each phoneme's dominance decaying
exponentially with the distance from its segment. So lips close fully for /p b m/ (strong),
/h/ or /k/ take the shape of their neighbours (weak), motion anticipates the sound by a few tens
of ms, and nothing moves stepwise. Silence is a closed mouth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from talkface import FPS
from talkface.sample.speech import Phoneme

# A mouth shape: (openness 0-1: jaw + lip gap, spread 0-1: lips pulled wide, round 0-1: lips
# pushed forward and narrowed). Diphthongs glide from a first to a second shape.
Shape = tuple[float, float, float]

CLOSED: Shape = (0.0, 0.0, 0.0)
SILENCE_DOMINANCE = 1.0

# Vowels (espeak-ng English mnemonics): dominance 1.
_VOWELS: dict[str, Shape | tuple[Shape, Shape]] = {
    "a": (0.80, 0.45, 0.0),
    "aa": (0.80, 0.40, 0.0),
    "a#": (0.45, 0.20, 0.0),
    "A:": (0.95, 0.20, 0.0),
    "A@": (0.90, 0.15, 0.05),
    "0": (0.80, 0.05, 0.35),
    "V": (0.65, 0.20, 0.0),
    "VR": (0.55, 0.10, 0.30),
    "@": (0.40, 0.15, 0.0),
    "@-": (0.35, 0.15, 0.0),
    "@L": (0.30, 0.20, 0.0),
    "3": (0.35, 0.05, 0.35),
    "3:": (0.40, 0.05, 0.40),
    "E": (0.60, 0.45, 0.0),
    "e@": (0.60, 0.40, 0.0),
    "I": (0.35, 0.50, 0.0),
    "I2": (0.33, 0.50, 0.0),
    "I#": (0.33, 0.45, 0.0),
    "IR": (0.35, 0.40, 0.1),
    "i": (0.30, 0.55, 0.0),
    "i:": (0.28, 0.65, 0.0),
    "U": (0.30, 0.05, 0.65),
    "u:": (0.22, 0.0, 0.95),
    "O:": (0.60, 0.0, 0.70),
    "O@": (0.60, 0.0, 0.65),
    "O2": (0.60, 0.0, 0.65),
    "o@": (0.55, 0.0, 0.65),
    "aI": ((0.85, 0.35, 0.0), (0.35, 0.50, 0.0)),
    "aI2": ((0.85, 0.35, 0.0), (0.35, 0.50, 0.0)),
    "aI3": ((0.85, 0.35, 0.0), (0.40, 0.30, 0.0)),
    "aI@": ((0.85, 0.35, 0.0), (0.40, 0.20, 0.0)),
    "aU": ((0.85, 0.30, 0.0), (0.30, 0.0, 0.80)),
    "eI": ((0.55, 0.45, 0.0), (0.30, 0.55, 0.0)),
    "oU": ((0.55, 0.0, 0.50), (0.30, 0.0, 0.85)),
    "OI": ((0.60, 0.0, 0.70), (0.35, 0.50, 0.0)),
    "i@": ((0.30, 0.55, 0.0), (0.40, 0.15, 0.0)),
    "i@3": ((0.30, 0.55, 0.0), (0.35, 0.05, 0.3)),
    "U@": ((0.30, 0.05, 0.65), (0.40, 0.15, 0.0)),
}

# Consonants: (shape, dominance). Bilabials must close, labiodentals nearly; tongue consonants
# let the neighbouring vowels shape the lips.
_CONSONANTS: dict[str, tuple[Shape, float]] = {
    "p": ((0.0, 0.10, 0.0), 3.0),
    "b": ((0.0, 0.10, 0.0), 3.0),
    "m": ((0.0, 0.10, 0.0), 3.0),
    "f": ((0.08, 0.25, 0.0), 2.0),
    "v": ((0.08, 0.25, 0.0), 2.0),
    "T": ((0.22, 0.30, 0.0), 1.0),
    "D": ((0.22, 0.30, 0.0), 1.0),
    "t": ((0.20, 0.30, 0.0), 0.6),
    "d": ((0.20, 0.30, 0.0), 0.6),
    "n": ((0.20, 0.30, 0.0), 0.5),
    "l": ((0.25, 0.30, 0.0), 0.5),
    "s": ((0.12, 0.45, 0.0), 0.9),
    "z": ((0.12, 0.45, 0.0), 0.9),
    "S": ((0.18, 0.0, 0.60), 1.0),
    "Z": ((0.18, 0.0, 0.60), 1.0),
    "tS": ((0.15, 0.0, 0.60), 1.0),
    "dZ": ((0.15, 0.0, 0.60), 1.0),
    "k": ((0.30, 0.20, 0.0), 0.4),
    "g": ((0.30, 0.20, 0.0), 0.4),
    "N": ((0.28, 0.20, 0.0), 0.4),
    "h": ((0.45, 0.20, 0.0), 0.1),
    "r": ((0.22, 0.0, 0.50), 0.8),
    "w": ((0.12, 0.0, 0.95), 1.5),
    "j": ((0.20, 0.50, 0.0), 0.8),
    "?": ((0.10, 0.20, 0.0), 0.4),
}
_FALLBACK_VOWEL: Shape = (0.45, 0.20, 0.0)
_FALLBACK_CONSONANT: tuple[Shape, float] = ((0.22, 0.25, 0.0), 0.5)

DECAY_S = 0.035  # dominance falls by e every 35 ms away from a segment's core
# Lip closures dominate strongly but briefly: the lips shut for /p b m f v/ without flattening
# the vowels around them.
LIP_CLOSURE_DECAY_S = 0.012
_LIP_CLOSURES = ("p", "b", "m", "f", "v")
CORE_FRACTION = 0.5  # the middle half of a segment is its core (full dominance)
GRID_HZ = 1000  # internal time resolution before averaging over each video frame


@dataclass(frozen=True)
class Target:
    start: float
    end: float
    shape: Shape
    dominance: float
    core_fraction: float = CORE_FRACTION  # silence: 1 (closed right up to the first sound)
    decay: float = DECAY_S


@dataclass
class VisemeTrack:
    """Per-frame mouth shapes; each array is (frames,) in [0, 1]."""

    openness: np.ndarray
    spread: np.ndarray
    rounding: np.ndarray

    def as_dict(self, digits: int = 4) -> dict[str, list[float]]:
        return {
            name: [round(float(v), digits) for v in getattr(self, name)] for name in ("openness", "spread", "rounding")
        }


def phoneme_targets(name: str, start: float, end: float) -> list[Target]:
    """The target(s) of one phoneme; a diphthong is two targets, one per half."""
    key = _lookup(name)
    if key in _VOWELS:
        shape = _VOWELS[key]
        if isinstance(shape[0], tuple):
            middle = (start + end) / 2
            return [Target(start, middle, shape[0], 1.0), Target(middle, end, shape[1], 1.0)]
        return [Target(start, end, shape, 1.0)]
    if key in _CONSONANTS:
        shape, dominance = _CONSONANTS[key]
        decay = LIP_CLOSURE_DECAY_S if key in _LIP_CLOSURES else DECAY_S
        return [Target(start, end, shape, dominance, decay=decay)]
    if key == ";":  # espeak's palatalisation mark: no shape of its own
        return []
    if name[:1] in "aeiouAEIOUV@03":
        return [Target(start, end, _FALLBACK_VOWEL, 1.0)]
    shape, dominance = _FALLBACK_CONSONANT
    return [Target(start, end, shape, dominance)]


def _lookup(name: str) -> str:
    """Exact mnemonic, else its longest known prefix ("t#" → "t", "n-" → "n")."""
    for length in range(len(name), 0, -1):
        if name[:length] in _VOWELS or name[:length] in _CONSONANTS:
            return name[:length]
    return name


def viseme_track(
    phonemes: Sequence[Phoneme],
    num_frames: int,
    offset: float = 0.0,
    fps: int = FPS,
) -> VisemeTrack:
    """Mouth shapes for `num_frames` video frames; phoneme times are shifted by `offset` seconds.

    The continuous trajectory is averaged over each frame's 1/fps interval (like a camera's
    exposure), so frame i shows the mouth during audio samples [i, i + 1) / fps.
    """
    duration = num_frames / fps
    targets = [t for p in phonemes for t in phoneme_targets(p.name, p.start + offset, p.end + offset)]
    spoken_start = min((t.start for t in targets), default=duration)
    spoken_end = max((t.end for t in targets), default=duration)
    targets.append(Target(-1.0, spoken_start, CLOSED, SILENCE_DOMINANCE, core_fraction=1.0))
    targets.append(Target(spoken_end, duration + 1.0, CLOSED, SILENCE_DOMINANCE, core_fraction=1.0))

    times = (np.arange(num_frames * GRID_HZ // fps) + 0.5) / GRID_HZ
    weights = np.stack([_dominance(t, times) for t in targets])  # (targets, grid)
    shapes = np.array([t.shape for t in targets], dtype=np.float64)  # (targets, 3)
    values = (weights.T @ shapes) / weights.sum(axis=0)[:, None]  # (grid, 3)
    per_frame = values.reshape(num_frames, GRID_HZ // fps, 3).mean(axis=1)
    per_frame = np.clip(per_frame, 0.0, 1.0).astype(np.float32)
    return VisemeTrack(per_frame[:, 0], per_frame[:, 1], per_frame[:, 2])


def _dominance(target: Target, times: np.ndarray) -> np.ndarray:
    """Full dominance inside the segment's core, exponential decay outside it."""
    margin = (1.0 - target.core_fraction) / 2 * (target.end - target.start)
    core_start, core_end = target.start + margin, target.end - margin
    distance = np.maximum(0.0, np.maximum(core_start - times, times - core_end))
    return target.dominance * np.exp(-distance / target.decay)
