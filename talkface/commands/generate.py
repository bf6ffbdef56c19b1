"""Make a talking-face mp4 from a face photo and a speech recording with two trained checkpoints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from talkface.errors import TalkfaceError
from talkface.faces import BACKENDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="face photo (jpg, png with alpha, webp, ...)")
    parser.add_argument("--audio", required=True, help="speech (wav, mp3, flac, m4a, ...; any rate, mono or stereo)")
    parser.add_argument("--landmark-ckpt", required=True, help="stage-1 checkpoint (talkface fit -c configs/landmark/...)")
    parser.add_argument("--generator-ckpt", required=True, help="stage-2 checkpoint (talkface fit -c configs/generator/...)")
    parser.add_argument("--out", required=True, type=Path, help="the mp4 to write (H.264 + AAC, 25 fps)")
    parser.add_argument("--no-paste-back", dest="paste_back", action="store_false", help="write the aligned face crop instead of the whole photo")
    parser.add_argument("--feather", type=float, default=0.1, help="width of the blend at the crop's edge, as a fraction of the crop (default 0.1)")
    parser.add_argument("--backend", choices=BACKENDS, default="dlib", help="face landmark detector (default dlib)")
    parser.add_argument("--max-side", type=int, default=1024, help="shrink larger photos to this many pixels on the long side (default 1024)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from talkface.generation import generate

    if args.out.suffix.lower() != ".mp4":
        raise TalkfaceError(f"--out {args.out}: the output is an mp4 file; give a name ending in .mp4")
    result = generate(
        args.image, args.audio, args.landmark_ckpt, args.generator_ckpt, args.out,
        paste_back=args.paste_back, feather=args.feather, backend=args.backend, max_side=args.max_side,
        device=args.device, progress=not args.quiet,
    )
    for note in result.notes:
        print(f"talkface generate: note: {note}", file=sys.stderr)
    print(
        f"talkface generate: wrote {result.path} ({result.frames} frames, {result.audio_seconds:.2f} s of audio, "
        f"{result.size[0]}x{result.size[1]}) in {result.seconds:.1f} s ({result.fps:.1f} frames/s, "
        f"{result.realtime_factor:.2f}x real time)"
    )
    return 0
