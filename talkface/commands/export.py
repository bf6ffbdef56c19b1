"""Export a trained stage to a .safetensors release: weights and plain metadata, no pickle, no training state."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
The release holds what generation and evaluation need: the weights (stage 2 without its
discriminator), the model's arguments and the data facts (audio features, crop size, vocabulary).
`talkface generate` and `talkface evaluate` read it in place of the .ckpt.

example:
  talkface export runs/landmark_sample/lightning_logs/version_0/checkpoints/last.ckpt --out landmark.safetensors
  talkface export generator.ckpt --out generator.safetensors --fp16
  talkface export seed0.ckpt seed1.ckpt seed2.ckpt --out landmark.safetensors --fp16   # a stage-1 ensemble
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "checkpoint",
        type=Path,
        nargs="+",
        metavar="CKPT",
        help="a stage-1 or stage-2 .ckpt (or a release to re-export); several stage-1 runs of one recipe "
        "(e.g. seeds) make one ensemble model that predicts their mean",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="MODEL.safetensors", help="the file to write (atomically)"
    )
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="store floating weights as float16 (half the size; loading casts back to float32)",
    )


def run(args: argparse.Namespace) -> int:
    from talkface.generation.release import export_ensemble, export_model

    sources = args.checkpoint
    if len(sources) == 1:
        out, stage, tensors = export_model(sources[0], args.out, fp16=args.fp16)
        what = stage
    else:
        out, stage, tensors = export_ensemble(sources, args.out, fp16=args.fp16)
        what = f"{stage}, an ensemble of {len(sources)}"
    size = out.stat().st_size / 1e6
    before = sum(source.stat().st_size for source in sources) / 1e6
    inputs = f"{sources[0]} is" if len(sources) == 1 else f"the {len(sources)} checkpoints are"
    print(
        f"talkface export: wrote {out} ({what}, {tensors} tensors, {'float16' if args.fp16 else 'float32'}, "
        f"{size:.1f} MB; {inputs} {before:.1f} MB)"
    )
    return 0
