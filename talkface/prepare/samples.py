"""Cut a processed video into samples: one per LRW clip, fixed-length windows for GRID and folders."""

from __future__ import annotations

import numpy as np

from talkface import FPS
from talkface.prepare.clip_pipeline import ProcessedVideo
from talkface.prepare.sources import Source

# Fields that stage 1 needs; stage 2 additionally needs the JPEG frames ("full" fields).
LIGHT_FIELDS = ("id", "word", "word_mask", "landmarks", "landmarks_norm", "features", "audio", "transforms")
FRAME_FIELDS = ("frames_jpeg", "frame_offsets")


def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    if window <= 0 or window >= num_frames:
        return [0]
    return list(range(0, num_frames - window + 1, stride))


def cut_samples(
    source: Source,
    video: ProcessedVideo,
    window: int,
    stride: int,
    vocabulary: list[str],
    crop_size: int,
    steps_per_frame: int,
    context: int,
) -> list[dict]:
    """The samples of one video, each a dict of the fields in LIGHT_FIELDS + FRAME_FIELDS."""
    total = video.num_frames
    length = total if window <= 0 else min(window, total)
    samples = []
    for start in window_starts(total, window, stride):
        stop = start + length
        # Word times are in the source clip's time: frames cut from its start shift them.
        offset = video.first_frame
        word, mask = _word_label(source, start + offset, stop + offset, total, vocabulary)
        offsets = video.frame_offsets[start : stop + 1]
        landmarks = video.landmarks[start:stop]
        feature_rows = slice(start * steps_per_frame, (stop + context - 1) * steps_per_frame)
        samples.append(
            {
                "id": source.id if length == total else f"{source.id}#{start:06d}",
                "word": int(word),
                "word_mask": mask,
                "landmarks": np.ascontiguousarray(landmarks),
                "landmarks_norm": np.ascontiguousarray(landmarks / np.float32(crop_size)),
                "features": np.ascontiguousarray(video.features[feature_rows]),
                "audio": np.ascontiguousarray(video.audio[start * 640 : stop * 640]),
                "transforms": np.ascontiguousarray(video.transforms[start:stop]),
                "frames_jpeg": np.ascontiguousarray(video.frames_jpeg[offsets[0] : offsets[-1]]),
                "frame_offsets": (offsets - offsets[0]).astype(np.int64),
            }
        )
    return samples


def _word_label(source: Source, start: int, stop: int, total: int, vocabulary: list[str]) -> tuple[int, np.ndarray]:
    """The word label and the mask of frames inside that word (-1 and zeros when unknown)."""
    frames = np.arange(start, stop)
    centres = (frames + 0.5) / FPS
    if source.word is not None:  # LRW: one word, centred in the clip
        index = vocabulary.index(source.word) if source.word in vocabulary else -1
        if source.word_seconds is None:
            return index, np.ones(len(frames), np.uint8)
        middle = total / 2 / FPS
        inside = np.abs(centres - middle) <= source.word_seconds / 2
        return index, inside.astype(np.uint8)
    if source.word_spans:  # GRID with .align: the word under the window's centre
        middle = (start + stop) / 2 / FPS
        for word, begin, end in source.word_spans:
            if begin <= middle < end:
                inside = (centres >= begin) & (centres < end)
                return (vocabulary.index(word) if word in vocabulary else -1), inside.astype(np.uint8)
    return -1, np.zeros(len(frames), np.uint8)
