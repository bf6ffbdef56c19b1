"""Measure the lip sync of one video: its face found and aligned as `talkface prepare` does, then
the distance curve of a sync expert over offsets, from which the offset, LSE-D and LSE-C follow.

The face is tracked once per video; each audio (the video's own, or recordings given instead)
is then measured against the same crops, so checking several candidate soundtracks costs one
face track.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from talkface.errors import TalkfaceError
from talkface.metrics.lip_sync import DEFAULT_MAX_OFFSET, distance_curve, sync_scores

SAMPLE_RATE = 16000
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS


@dataclass(frozen=True)
class FaceTrack:
    """A video's aligned face crops, and where they start in its sound."""

    frames: torch.Tensor  # (T, 3, S, S) uint8 RGB aligned crops, 25 fps
    first_frame: int  # source frame of crop 0 (frames without a face before it are cut)
    audio: np.ndarray | None  # the video's own sound under the crops (float32, 16 kHz), if it has one


@dataclass(frozen=True)
class SyncResult:
    audio: str  # which recording was measured
    expert: str  # which expert measured it: scores of two experts are not comparable
    offset_frames: int  # positive: the sound comes late
    offset_ms: float
    confidence: float  # = LSE-C of the whole clip (median minus minimum of the distance curve)
    lse_d: float
    lse_c: float
    frames: int  # video frames measured
    curve: list[float]  # mean distance per offset, -max_offset .. max_offset (NaN: no overlap)

    def to_dict(self) -> dict:
        return asdict(self)


def track_face(
    video: str | Path, crop_size: int = 128, backend: str = "dlib", audio: np.ndarray | None = None
) -> FaceTrack:
    """The aligned crops of `video` (talkface/prepare's clip pipeline); `audio` stands in for its
    own sound when it has none."""
    from talkface.faces import get_extractor
    from talkface.media.jpeg import decode_jpeg
    from talkface.prepare.clip_pipeline import PipelineSettings, SkipClip, process_source
    from talkface.prepare.sources import Source

    video = Path(video)
    if not video.is_file():
        raise TalkfaceError(f"{video}: no such video file")
    settings = PipelineSettings(crop_size=crop_size)
    try:
        processed = process_source(Source(video.stem, video, "test"), get_extractor(backend), settings, audio=audio)
    except SkipClip as reason:
        raise TalkfaceError(f"{video}: cannot measure its lip sync: {reason}") from None
    data, offsets = processed.frames_jpeg, processed.frame_offsets
    crops = np.stack([decode_jpeg(data[offsets[i] : offsets[i + 1]]) for i in range(processed.num_frames)])
    own = None if audio is not None else processed.audio.astype(np.float32) / 32767.0
    return FaceTrack(torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous(), processed.first_frame, own)


def audio_under(track: FaceTrack, audio: np.ndarray) -> np.ndarray:
    """The part of a whole recording that plays under the tracked crops (cut at the same first
    frame as the video, padded with silence when it ends early)."""
    start = track.first_frame * SAMPLES_PER_FRAME
    needed = len(track.frames) * SAMPLES_PER_FRAME
    part = np.zeros(needed, np.float32)
    piece = np.asarray(audio, np.float32).reshape(-1)[start : start + needed]
    part[: len(piece)] = piece
    return part


def measure(
    expert, track: FaceTrack, audio: np.ndarray, label: str, max_offset: int = DEFAULT_MAX_OFFSET
) -> SyncResult:
    """Offset, confidence, LSE-D and LSE-C of `audio` (already under the crops) against the track."""
    if not np.any(np.abs(audio) > 1e-4):
        raise TalkfaceError(f"{label}: silent under the video's face; nothing to measure")
    video_embeddings, audio_embeddings = expert.embed(track.frames, audio)
    curve = distance_curve(video_embeddings, audio_embeddings, max_offset)
    scores = sync_scores(curve)
    offset = int(scores["offset"])
    return SyncResult(
        audio=label,
        expert=expert.name,
        offset_frames=offset,
        offset_ms=1000.0 * offset / FPS,
        confidence=float(scores["lse_c"]),
        lse_d=float(scores["lse_d"]),
        lse_c=float(scores["lse_c"]),
        frames=len(track.frames),
        curve=[float(v) for v in curve],
    )
