"""Make a talking-face mp4 from a face photo and a speech recording (the released models, or your own)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from talkface.checks import (
    MAX_SIDE_RANGE,
    PRECISIONS,
    check_device_available,
    check_device_name,
    check_feather,
    check_max_side,
    check_output_file,
)
from talkface.errors import TalkfaceError
from talkface.faces import BACKENDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="face photo (jpg, png with alpha, webp, ...)")
    parser.add_argument("--audio", required=True, help="speech (wav, mp3, flac, m4a, ...; any rate, mono or stereo)")
    parser.add_argument(
        "--landmark-ckpt",
        help="stage-1 model: .ckpt from `talkface fit -c landmark/...` or .safetensors (default: the released one)",
    )
    parser.add_argument(
        "--generator-ckpt",
        help="stage-2 model: .ckpt from `talkface fit -c generator/...` or .safetensors (default: the released one)",
    )
    parser.add_argument("--out", required=True, type=Path, help="the mp4 to write (H.264 + AAC, 25 fps)")
    parser.add_argument(
        "--no-paste-back",
        dest="paste_back",
        action="store_false",
        help="write the aligned face crop instead of the whole photo",
    )
    parser.add_argument(
        "--feather",
        type=float,
        default=0.1,
        help="width of the blend at the crop's edge, 0 to 0.5 of the crop (default 0.1)",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="dlib", help="face landmark detector (default dlib)")
    parser.add_argument(
        "--max-side",
        type=int,
        default=1024,
        help=f"shrink larger photos to this many pixels on the long side, {MAX_SIDE_RANGE[0]} to {MAX_SIDE_RANGE[1]} (default 1024)",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="what stage 2's convolutions run in: bf16 takes about half the time where the hardware has it "
        "(AVX512-BF16 or AMX CPUs, recent GPUs) and moves pixels by about 1 of 255 levels; "
        "auto (default) uses it there, fp32 elsewhere",
    )
    parser.add_argument(
        "--mouth-from-photo",
        action="store_true",
        help="keep the photo's own mouth inside (a smile's teeth) wherever the photo's mouth is already as "
        "open, and draw only what opens further; on the unseen test people lip sync scores a little lower "
        "(MODEL_CARD.md)",
    )
    parser.add_argument(
        "--teeth",
        action="store_true",
        help="paint upper teeth into the opening mouth instead of a dark hole, once the lips part by more than a "
        "little (a generator with a mouth shade, as the released one); dlib then finds the lips' opening a little "
        "less well, so lip sync scores a little lower (MODEL_CARD.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def check_arguments(args: argparse.Namespace) -> None:
    """Everything that can be known wrong without loading a model: reported in the first second."""
    if args.landmark_ckpt is None or args.generator_ckpt is None:
        from talkface.weights import released_checkpoints

        landmark, generator = released_checkpoints()
        args.landmark_ckpt = args.landmark_ckpt or landmark
        args.generator_ckpt = args.generator_ckpt or generator
    inputs = {
        "--image": args.image,
        "--audio": args.audio,
        "--landmark-ckpt": args.landmark_ckpt,
        "--generator-ckpt": args.generator_ckpt,
    }
    for option, path in inputs.items():
        if not Path(path).exists():
            raise TalkfaceError(f"{option} {path}: no such {'checkpoint ' if option.endswith('-ckpt') else ''}file")
        if Path(path).is_dir():
            raise TalkfaceError(f"{option} {path} is a folder; give a file")
    check_output_file(args.out, inputs, suffix=".mp4")
    check_feather(args.feather)
    check_max_side(args.max_side)
    check_device_name(args.device)


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    check_device_available(args.device)  # needs torch: after the instant checks, before any model loads

    from talkface.generation import generate
    from talkface.networks.mouth_inside import TEETH_DEPTH

    result = generate(
        args.image,
        args.audio,
        args.landmark_ckpt,
        args.generator_ckpt,
        args.out,
        paste_back=args.paste_back,
        feather=args.feather,
        backend=args.backend,
        max_side=args.max_side,
        device=args.device,
        precision=args.precision,
        mouth_from_photo=True if args.mouth_from_photo else None,
        mouth_teeth=TEETH_DEPTH if args.teeth else None,
        progress=not args.quiet,
    )
    for note in result.notes:
        print(f"talkface generate: note: {note}", file=sys.stderr)
    print(
        f"talkface generate: wrote {result.path} ({result.frames} frames, {result.audio_seconds:.2f} s of audio, "
        f"{result.size[0]}x{result.size[1]}) in {result.seconds:.1f} s ({result.fps:.1f} frames/s, "
        f"{result.realtime_factor:.2f}x real time{', stage 2 in bf16' if result.precision == 'bf16' else ''})"
    )
    return 0
