"""Preparation speed next to this machine's limit (decoding alone) and the naive alternative.

All three process the same clips with the same number of processes: pure decoding is the upper
bound of any preparation; the naive pipeline runs the face detector on every frame, which is what
the tracking in `talkface prepare` (detect once, then follow the landmarks) avoids. A fourth run,
in one process, times each stage of `talkface prepare` to say where a frame's time goes, and a
fifth times only decoding and one landmark fit per frame: the floor of any pipeline that fits
every frame with this landmark model.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from talkface.prepare import PrepareSettings, prepare_dataset


def clips_of(raw: Path) -> list[Path]:
    return sorted(raw.rglob("*.mp4"))


def decode_rate(clips: list[Path], workers: int) -> dict:
    return _pool_rate(_decode_frames, clips, workers)


def prepare_rate(raw: Path, out: Path, workers: int) -> dict:
    started = time.perf_counter()
    report = prepare_dataset(PrepareSettings(src=raw, out=out, workers=workers, progress=False))
    return _rate(report.total_samples, sum(report.frames.values()), time.perf_counter() - started)


def stage_profile(raw: Path, out: Path) -> dict:
    """`talkface prepare` in this process (one worker), each stage of every clip timed.

    The stages are `process_source`'s (decode, landmarks, alignment, crop encoding, features);
    loading the landmark model is timed apart, and the rest of the run is writing the work files
    and packing the dataset. Per frame and as a share of the whole run.
    """
    import cv2
    import torch

    from talkface.faces.dlib_backend import DlibExtractor
    from talkface.prepare.clip_pipeline import CLOCK, STAGES

    threads = torch.get_num_threads(), cv2.getNumThreads()  # the in-process worker sets both to 1
    try:
        started = time.perf_counter()
        DlibExtractor()  # what each worker process does first (a fresh load: this process may hold one)
        loading = time.perf_counter() - started
        CLOCK.reset()
        report = prepare_dataset(PrepareSettings(src=raw, out=out, workers=1, progress=False))
        total = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    seconds = {"model loading": loading, **{stage: CLOCK.seconds[stage] for stage in STAGES}}
    seconds["work files and packing"] = total - sum(seconds.values())
    frames = sum(report.frames.values())
    return {
        **_rate(report.total_samples, frames, total),
        "stages": {
            stage: {
                "seconds": round(value, 3),
                "ms_per_frame": round(1000 * value / max(frames, 1), 3),
                "share": round(value / total, 3),
            }
            for stage, value in seconds.items()
        },
    }


def landmark_fit_floor(clips: list[Path]) -> dict:
    """What any preparation that fits the 68 points on every frame must spend, in this process.

    Per frame: decoding it, and one fit of dlib's predictor at the face's box (found once per clip,
    not timed). Nothing else is counted, so `best_ratio`, decoding over decoding plus fitting, is
    the highest preparation / pure decode that this landmark model allows on these clips.
    """
    import cv2
    import torch

    from talkface.faces.dlib_backend import DlibExtractor
    from talkface.faces.landmarks import largest_box
    from talkface.media import read_video

    threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)  # as in a preparation worker
    cv2.setNumThreads(1)
    try:
        extractor = DlibExtractor()
        decoding = fitting = 0.0
        frames = 0
        for clip in clips:
            started = time.perf_counter()
            video = read_video(clip).frames
            decoding += time.perf_counter() - started
            boxes = extractor.detect(video[0])
            if not boxes:
                continue
            box = largest_box(boxes)
            started = time.perf_counter()
            for frame in video:
                extractor.fit(frame, box)
            fitting += time.perf_counter() - started
            frames += len(video)
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    decode_ms, fit_ms = 1000 * decoding / max(frames, 1), 1000 * fitting / max(frames, 1)
    return {
        "clips": len(clips),
        "frames": frames,
        "decode_ms_per_frame": round(decode_ms, 3),
        "fit_ms_per_frame": round(fit_ms, 3),
        "best_ratio": round(decode_ms / max(decode_ms + fit_ms, 1e-9), 3),
    }


def naive_rate(clips: list[Path], workers: int) -> dict:
    return _pool_rate(_detect_every_frame, clips, workers)


def _pool_rate(work, clips: list[Path], workers: int) -> dict:
    """Frames/s of `work(clip) -> frames` over all clips in `workers` processes."""
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        frames = sum(pool.map(work, clips))
    return _rate(len(clips), frames, time.perf_counter() - started)


def _rate(clips: int, frames: int, seconds: float) -> dict:
    return {
        "clips": clips,
        "frames": frames,
        "seconds": round(seconds, 2),
        "frames_per_second": round(frames / seconds, 1),
    }


def _decode_frames(path: Path) -> int:
    from talkface.media import read_video

    return len(read_video(path).frames)


def _detect_every_frame(path: Path) -> int:
    from talkface.faces import get_extractor
    from talkface.media import read_video

    extractor = get_extractor("dlib")
    frames = read_video(path).frames
    for frame in frames:
        extractor.landmarks(frame)
    return len(frames)
