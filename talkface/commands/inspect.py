"""Show what talkface reads from media files: frames at 25 fps, size, audio length, a face."""

from __future__ import annotations

import argparse
from pathlib import Path

from talkface import FPS, SAMPLE_RATE
from talkface.faces import BACKENDS
from talkface.media.formats import AUDIO_SUFFIXES, VIDEO_SUFFIXES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="video, audio or image files")
    parser.add_argument("--face", action="store_true", help="also detect the face (first video frame / the image)")
    parser.add_argument(
        "--backend", default="dlib", choices=BACKENDS, help="landmark backend for --face (the same names as generate's)"
    )


def run(args: argparse.Namespace) -> int:
    for path in args.paths:
        print(describe(path, args.face, args.backend))
    return 0


def describe(path: Path, face: bool = False, backend: str = "dlib") -> str:
    from talkface.media import read_audio, read_image, read_video

    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        audio = read_audio(path)
        return f"{path}: audio {len(audio) / SAMPLE_RATE:.3f} s ({len(audio)} samples at {SAMPLE_RATE} Hz mono)"
    if suffix in VIDEO_SUFFIXES:
        clip = read_video(path)
        height, width = clip.frames.shape[1:3]
        audio = "no audio" if clip.audio is None else f"audio {len(clip.audio) / SAMPLE_RATE:.3f} s"
        line = (
            f"{path}: video {len(clip.frames)} frames at {FPS} fps ({clip.duration:.3f} s, "
            f"source {clip.source_fps:g} fps), {width}x{height}, {audio}"
        )
        image = clip.frames[0]
    else:
        image = read_image(path)
        line = f"{path}: image {image.shape[1]}x{image.shape[0]}"
    if face:
        from talkface.faces import get_extractor

        points = get_extractor(backend).landmarks(image, name=str(path))
        left, top = points.min(axis=0)
        right, bottom = points.max(axis=0)
        line += f", face at x {left:.0f}-{right:.0f} y {top:.0f}-{bottom:.0f}"
    return line
