"""Evaluate trained checkpoints against the trivial baselines on a prepared test split (markdown + JSON)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from talkface.errors import TalkfaceError

EPILOG = """\
CKPT is a .ckpt file or a run folder (its best checkpoint, as `talkface test --ckpt_path best`
picks); NAME is the row's name in the tables (default: the run folder's name). Every end-to-end
pair also gets its lip sync (LSE-D, LSE-C, the audio-video offset) next to the real video's and
the still photo's, measured by the released sync expert (--sync-expert or --syncnet: another).

example (the built-in sample, the ablations, the full model and the generator):
  talkface evaluate --data data/sample_prepared --ablation-dir runs/ablation \\
    --landmark "talkface stage 1=runs/landmark_sample" --generator "U-Net generator=runs/generator_sample"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="a prepared dataset folder (talkface prepare)"
    )
    parser.add_argument("--split", default="test", help="the split to evaluate on (default: test)")
    parser.add_argument(
        "--landmark", action="append", default=[], metavar="[NAME=]CKPT", help="a stage-1 checkpoint (repeatable)"
    )
    parser.add_argument(
        "--generator", action="append", default=[], metavar="[NAME=]CKPT", help="a stage-2 checkpoint (repeatable)"
    )
    parser.add_argument(
        "--ablation-dir",
        type=Path,
        metavar="DIR",
        help="the --out folder of `talkface ablate`: adds its variants as stage-1 rows",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where evaluation.md and evaluation.json go (default: runs/evaluation/<data folder name>)",
    )
    parser.add_argument(
        "--frame-stride",
        type=int,
        default=4,
        metavar="N",
        help="stage 2 scores every n-th frame from frame 1 (default 4; 1 = all, slower: dlib re-detects each)",
    )
    parser.add_argument(
        "--limit-batches", type=int, default=None, metavar="N", help="evaluate only the first N batches of the split"
    )
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="clips per batch (default 8)")
    parser.add_argument("--num-workers", type=int, default=0, metavar="N", help="data loader processes (default 0)")
    parser.add_argument(
        "--no-end-to-end",
        dest="end_to_end",
        action="store_false",
        help="skip the chained stage 1 → stage 2 rows (one generator run per landmark checkpoint)",
    )
    parser.add_argument(
        "--sync-expert",
        metavar="PATH",
        help="the lip-sync expert that measures LSE-D, LSE-C and the offset end to end: a .ckpt of "
        "`talkface fit -c sync/real` or .safetensors (default: the released one)",
    )
    parser.add_argument(
        "--syncnet",
        metavar="syncnet_v2.model",
        help="measure the lip sync with the official SyncNet v2 instead, from its weights file",
    )
    parser.add_argument(
        "--no-lip-sync",
        dest="lip_sync",
        action="store_false",
        help="skip the lip-sync scores (they draw every frame of each clip, not only every --frame-stride-th)",
    )
    parser.add_argument("--accelerator", default="auto", help="auto (default), cpu, gpu, ...")


def run(args: argparse.Namespace) -> int:
    from lightning_modules import FaceGenModule, LandmarkModule
    from talkface.evaluation import (
        Settings,
        evaluate,
        load_all,
        markdown_report,
        read_meta,
    )
    from talkface.evaluation.report import captions, write_atomic, write_json
    from talkface.evaluation.runner import clips_evaluated
    from talkface.metrics import DEFAULT_BOX_FRACTION

    started = time.perf_counter()
    _check_numbers(args)
    landmarks, generators, notes = _checkpoints(args)
    landmark_models, generator_models = load_all(landmarks, LandmarkModule), load_all(generators, FaceGenModule)
    expert = _sync_expert(args, bool(landmarks and generators and args.end_to_end))
    settings = Settings(
        data_dir=args.data,
        split=args.split,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        frame_stride=args.frame_stride,
        limit_batches=args.limit_batches,
        accelerator=args.accelerator,
    )
    meta = read_meta(settings)
    clips = clips_evaluated(settings, meta)
    pairs = len(landmarks) * len(generators) if args.end_to_end else 0
    print(
        f"talkface evaluate: {len(landmarks)} stage-1 and {len(generators)} stage-2 checkpoint(s)"
        + (f" and {pairs} end-to-end pair(s)" if pairs else "")
        + f" on {clips} {args.split} clips of {args.data}",
        file=sys.stderr,
        flush=True,
    )
    result = evaluate(landmark_models, generator_models, settings, meta, end_to_end=args.end_to_end, expert=expert)
    notes += result.notes
    seconds = time.perf_counter() - started

    text = captions(
        data=str(args.data),
        split=args.split,
        clips=clips,
        total_clips=meta["clips"],
        layout=meta.get("layout", "?"),
        labelled=bool(meta["vocabulary"]),
        frame_stride=args.frame_stride,
        crop_size=int(meta["crop_size"]),
        box_fraction=DEFAULT_BOX_FRACTION,
        generator=generators[0].name if len(generators) == 1 else None,
        sync_expert=expert.name if expert is not None else None,
    )
    device = _device(args.accelerator)
    footer = f"Wall time {seconds / 60:.1f} min on {device} (`talkface evaluate`; per row in evaluation.json)."
    if notes:
        footer += "\n\n" + "\n".join(f"Note: {note}" for note in notes)
    report = markdown_report(result.tables, text, f"Evaluation on `{args.data}` ({args.split} split)", footer)
    out = args.out or Path("runs/evaluation") / (
        args.data.resolve().name + ("" if args.split == "test" else f"-{args.split}")
    )
    write_json(
        out / "evaluation.json",
        {
            "data": str(args.data),
            "split": args.split,
            "clips": clips,
            "split_clips": meta["clips"],
            "layout": meta.get("layout"),
            "frame_stride": args.frame_stride,
            "limit_batches": args.limit_batches,
            "batch_size": args.batch_size,
            "device": device,
            "seconds": round(seconds, 1),
            "notes": notes,
            "sync_expert": expert.name if expert is not None else None,
            "captions": text,
            "tables": {key: [row.to_json() for row in rows] for key, rows in result.tables.items()},
        },
    )
    write_atomic(out / "evaluation.md", report)
    print(report, end="")
    for note in notes:
        print(f"talkface evaluate: note: {note}", file=sys.stderr)
    rows = sum(not row.baseline for rows in result.tables.values() for row in rows)
    print(
        f"talkface evaluate: {rows} rows in {seconds:.0f} s; wrote {out / 'evaluation.md'} and {out / 'evaluation.json'}",
        file=sys.stderr,
    )
    return 0


def _checkpoints(args: argparse.Namespace):
    """(stage-1 checkpoints, stage-2 checkpoints, notes): the ablation variants first, then --landmark."""
    from talkface.evaluation import parse_checkpoint
    from talkface.evaluation.runner import ablation_checkpoints

    landmarks, notes = ablation_checkpoints(args.ablation_dir) if args.ablation_dir is not None else ([], [])
    landmarks += [parse_checkpoint(value, "--landmark") for value in args.landmark]
    generators = [parse_checkpoint(value, "--generator") for value in args.generator]
    if not landmarks and not generators:
        raise TalkfaceError("nothing to evaluate: give --landmark, --generator or --ablation-dir")
    for group in (landmarks, generators):
        names = [c.name for c in group]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise TalkfaceError(f"two checkpoints are named {twice[0]!r}; name them apart with NAME=CKPT")
    return landmarks, generators, notes


def _sync_expert(args: argparse.Namespace, pairs: bool):
    """The expert that measures the lip sync (loaded up front, so a wrong file fails at once), or
    None when there is nothing to measure (no end-to-end pair) or --no-lip-sync."""
    if args.sync_expert and args.syncnet:
        raise TalkfaceError("give --sync-expert or --syncnet, not both")
    for option, path in (("--sync-expert", args.sync_expert), ("--syncnet", args.syncnet)):
        if path and not Path(path).is_file():
            raise TalkfaceError(f"{option} {path}: no such file")
    if not args.lip_sync or not pairs:
        return None
    from talkface.sync.experts import load_expert

    return load_expert(args.sync_expert, args.syncnet, option="--sync-expert")


def _check_numbers(args: argparse.Namespace) -> None:
    for option, value, least in (
        ("--frame-stride", args.frame_stride, 1),
        ("--batch-size", args.batch_size, 1),
        ("--limit-batches", args.limit_batches, 1),
        ("--num-workers", args.num_workers, 0),
    ):
        if value is not None and value < least:
            raise TalkfaceError(f"{option} must be at least {least}, got {value}")


def _device(accelerator: str) -> str:
    """The machine in words, for the report (timings mean little without it)."""
    import torch

    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"a {os.cpu_count()}-core CPU"
