"""One source video → aligned crops, landmarks, audio and features for all of its frames.

The result (`ProcessedVideo`) is what the work store keeps per source; samples (windows) are
cut from it when the dataset is packed.

A clip whose audio stops early is padded with silence only when little is missing: at most
MAX_MISSING_AUDIO (10 %) of the video's duration, or two video frames (80 ms) for short clips.
More than that (say 1.0 s of audio under a 4.8 s video) and the frames would be trained on
silence that is not there, so the clip is skipped with the reason in report.json.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from talkface.audio import FeatureConfig, compute_features
from talkface.errors import TalkfaceError
from talkface.faces import estimate_alignment, smooth_transforms, warp_to_crop
from talkface.faces.landmarks import LandmarkExtractor
from talkface.media import read_video
from talkface.media.jpeg import encode_jpeg
from talkface.prepare.sources import Source
from talkface.prepare.tracking import track_landmarks

MAX_MISSING_AUDIO = 0.10  # fraction of the video's duration that may lack audio (padded with silence)
MISSING_AUDIO_FRAMES = 2  # ... or this many video frames' worth, whichever is more


STAGES = ("decode", "landmarks", "alignment", "crop encoding", "features")


class StageClock:
    """Seconds spent in each stage of `process_source`, summed over the clips this process made.

    `talkface benchmark` reads it to say where each frame's time goes; a few clock reads per
    clip (not per frame) cost nothing next to the work they time.
    """

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.frames = 0

    @contextmanager
    def __call__(self, stage: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - started

    def reset(self) -> None:
        self.seconds.clear()
        self.frames = 0


CLOCK = StageClock()


class SkipClip(TalkfaceError):
    """This clip cannot be prepared (the reason is reported; the run goes on)."""


@dataclass
class ProcessedVideo:
    frames_jpeg: np.ndarray  # (bytes,) uint8: the JPEG-coded aligned crops, back to back
    frame_offsets: np.ndarray  # (T + 1,) int64 byte offsets into frames_jpeg
    landmarks: np.ndarray  # (T, 68, 2) float32 in crop pixels
    transforms: np.ndarray  # (T, 2, 3) float32 image → crop (temporally smoothed)
    audio: np.ndarray  # (T * 640,) int16, 16 kHz mono
    features: np.ndarray  # ((T + context - 1) * steps, dim) float16, context padding included
    source_size: np.ndarray  # (2,) int32 width, height of the source frames
    detections: int
    lost_frames: int
    seconds: float
    first_frame: int = 0  # source frame of frame 0: leading frames without a face are cut off

    @property
    def num_frames(self) -> int:
        return len(self.landmarks)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}
        arrays["stats"] = np.array([self.detections, self.lost_frames, self.seconds], np.float64)
        arrays["first_frame"] = np.array(self.first_frame, np.int64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> ProcessedVideo:
        detections, lost, seconds = arrays["stats"]
        fields = {
            k: arrays[k]
            for k in ("frames_jpeg", "frame_offsets", "landmarks", "transforms", "audio", "features", "source_size")
        }
        first = int(arrays["first_frame"]) if "first_frame" in arrays else 0  # older work files: 0
        return cls(
            **fields, detections=int(detections), lost_frames=int(lost), seconds=float(seconds), first_frame=first
        )


@dataclass(frozen=True)
class PipelineSettings:
    crop_size: int = 128
    features: FeatureConfig = FeatureConfig()
    min_frames: int = 5
    smooth_window: int = 5  # frames over which the alignment transform is averaged
    landmark_smoothing: int = 1  # passes of a [1, 2, 1] / 4 filter over time: removes detector jitter
    max_lost_fraction: float = 0.2
    jpeg_quality: int = 95
    video_only: bool = False  # the sound is ignored: silence and its features are stored (stage-2 data)


def process_source(
    source: Source, extractor: LandmarkExtractor, settings: PipelineSettings, audio: np.ndarray | None = None
) -> ProcessedVideo:
    """Decode, track landmarks, align, crop and featurise one video; SkipClip says why not.

    `audio` (float32 mono at the features' rate) replaces the file's own sound: `talkface sync
    --audio` measures a video against another recording."""
    started = time.perf_counter()
    with CLOCK("decode"):
        clip = read_video(source.path, with_audio=audio is None and not settings.video_only)
    frames = clip.frames
    if settings.video_only:
        speech = np.zeros(len(frames) * settings.features.samples_per_frame, np.float32)
    else:
        speech = clip.audio if audio is None else np.asarray(audio, np.float32).reshape(-1)
        if speech is None:
            # Stage 1 needs the speech: a dataset of clips without sound is prepared on its own,
            # marked as such in meta.json, and only stage 2 trains on it.
            raise SkipClip("no audio stream (prepare video-only clips into their own --out with --video-only)")
        speech = in_step(speech, source.audio_offset, settings.features.samples_per_frame)
    if len(frames) < settings.min_frames:
        raise SkipClip(f"too short: {len(frames)} frames, at least {settings.min_frames} needed")
    if not settings.video_only:
        check_audio_covers_video(
            len(speech), len(frames), settings.features.samples_per_frame, settings.features.sample_rate
        )
        if np.abs(speech).max() < 1e-4:
            raise SkipClip("silent audio")

    with CLOCK("landmarks"):
        track = track_landmarks(frames, extractor, name=source.id)
    first, stop = 0, len(frames)
    if source.word is None and track.found is not None:  # LRW clips keep all 29 frames (word centred)
        first, stop = face_span(track.found)
        if stop - first < settings.min_frames:
            raise SkipClip(f"face found in only {stop - first} consecutive frames of {len(frames)}")
    lost = int((~track.found[first:stop]).sum()) if track.found is not None else track.lost
    if lost > settings.max_lost_fraction * (stop - first):
        trimmed = f" (of frames {first}-{stop - 1})" if (first, stop) != (0, len(frames)) else ""
        raise SkipClip(f"face lost in {lost} of {stop - first} frames{trimmed}")
    frames = frames[first:stop]
    clip_audio = speech[first * settings.features.samples_per_frame :]

    with CLOCK("alignment"):
        image_landmarks = smooth_over_time(track.landmarks[first:stop].astype(np.float64), settings.landmark_smoothing)
        transforms = smooth_transforms(estimate_alignment(image_landmarks, settings.crop_size), settings.smooth_window)
        # Each frame's points through its own matrix: (T, 68, 2) @ (T, 2, 2)^T + (T, 1, 2).
        landmarks = image_landmarks @ transforms[:, :, :2].transpose(0, 2, 1) + transforms[:, None, :, 2]
    with CLOCK("crop encoding"):
        jpegs = [
            encode_jpeg(warp_to_crop(f, m, settings.crop_size), settings.jpeg_quality)
            for f, m in zip(frames, transforms, strict=True)
        ]

    with CLOCK("features"):
        samples = len(frames) * settings.features.samples_per_frame
        audio = np.zeros(samples, np.float32)
        audio[: min(samples, len(clip_audio))] = clip_audio[:samples]
        features = compute_features(audio, len(frames), settings.features).numpy().astype(np.float16)
    CLOCK.frames += len(frames)

    return ProcessedVideo(
        frames_jpeg=np.frombuffer(b"".join(jpegs), np.uint8),
        frame_offsets=np.cumsum([0] + [len(j) for j in jpegs]).astype(np.int64),
        landmarks=landmarks.astype(np.float32),
        transforms=transforms.astype(np.float32),
        audio=(np.clip(audio, -1, 1) * 32767).astype(np.int16),
        features=features,
        source_size=np.array([frames.shape[2], frames.shape[1]], np.int32),
        detections=track.detections,
        lost_frames=lost,
        seconds=time.perf_counter() - started,
        first_frame=first,
    )


def in_step(speech: np.ndarray, offset_frames: int, samples_per_frame: int) -> np.ndarray:
    """The sound of a recording whose sound comes `offset_frames` late (early when negative),
    moved so that it lines up with the picture: advanced (its start dropped), or delayed behind
    silence. The end it loses or gains is handled like any short or long track."""
    samples = abs(offset_frames) * samples_per_frame
    if offset_frames > 0:
        return speech[samples:]
    if offset_frames < 0:
        return np.concatenate([np.zeros(samples, speech.dtype), speech])
    return speech


def face_span(found: np.ndarray) -> tuple[int, int]:
    """[first, stop) of the frames between the first and the last one where the face was found.

    Frames before and after are cut (with their audio): a GRID clip that fades in from grey, or
    whose first second is corrupt, keeps the part where the face can be seen. Lost frames inside
    the span keep their neighbours' landmarks and count against `max_lost_fraction`.
    """
    where = np.flatnonzero(found)
    return (int(where[0]), int(where[-1]) + 1) if len(where) else (0, 0)


def check_audio_covers_video(audio_samples: int, frames: int, samples_per_frame: int, sample_rate: int) -> None:
    """SkipClip when the audio misses more than MAX_MISSING_AUDIO of the video (or 2 frames)."""
    needed = frames * samples_per_frame
    missing = needed - audio_samples
    if missing > max(MAX_MISSING_AUDIO * needed, MISSING_AUDIO_FRAMES * samples_per_frame):
        raise SkipClip(
            f"audio covers only {audio_samples / sample_rate:.2f} s of the {needed / sample_rate:.2f} s video "
            f"({100 * audio_samples / needed:.0f} %); at most {MAX_MISSING_AUDIO:.0%} may be missing"
        )


def smooth_over_time(landmarks: np.ndarray, passes: int) -> np.ndarray:
    """A [1, 2, 1] / 4 filter along time, `passes` times (ends replicated).

    dlib fits every frame independently; its jitter (~0.6 px of a 256 crop on the mouth) is not
    motion, and left in the targets it sets a floor under every model's landmark distance.
    """
    for _ in range(passes):
        padded = np.concatenate([landmarks[:1], landmarks, landmarks[-1:]])
        landmarks = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    return landmarks
