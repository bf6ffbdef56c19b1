"""Prepare raw clips (LRW tree, GRID, any folder of videos) into a streaming training dataset."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from talkface.errors import TalkfaceError
from talkface.faces import BACKENDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", type=Path, required=True, help="raw dataset root")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="prepared dataset folder: new or empty, or an earlier prepare's (resumed); not --src nor holding it",
    )
    parser.add_argument("--layout", default="auto", choices=["auto", "lrw", "grid", "folder"])
    parser.add_argument("--crop", type=int, default=128, choices=[128, 256], help="aligned crop size in pixels")
    parser.add_argument(
        "--backend", default="dlib", choices=BACKENDS, help="landmark backend: dlib (offline) or face_alignment"
    )
    parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    parser.add_argument("--splits", default="train,val,test", help="comma-separated splits to prepare")
    parser.add_argument("--window", type=int, default=29, help="grid/folder: frames per sample (0: whole clip)")
    parser.add_argument(
        "--stride", type=int, default=None, help="grid/folder: frames between windows (default: window)"
    )
    parser.add_argument("--split-ratios", default="0.8,0.1,0.1", help="grid/folder: train,val,test shares by clip name")
    parser.add_argument(
        "--identities",
        type=Path,
        default=None,
        help="CSV with columns file,identity,split (file: a path or glob relative to the CSV's folder or to --src): "
        "every clip goes to its identity's split instead of --split-ratios; a clip it does not name is an error",
    )
    parser.add_argument(
        "--av-offsets",
        type=Path,
        default=None,
        help="CSV with columns file,offset_frames (file as in --identities): recordings whose sound comes late "
        "(positive, as `talkface sync` prints it) or early, moved into step with the picture before features",
    )
    parser.add_argument(
        "--video-only",
        action="store_true",
        help="prepare the picture only, for stage 2 (e.g. clips without sound): any sound is ignored, "
        "and stage 1 refuses the dataset",
    )
    parser.add_argument("--features", default="mel", choices=["mel", "mfcc"], help="audio features")
    parser.add_argument("--n-mels", type=int, default=80)
    parser.add_argument("--context", type=int, default=7, help="video frames of audio context per frame (odd)")
    parser.add_argument(
        "--num-nodes",
        type=int,
        default=None,
        help="machines preparing together: run this same command on each with its --node-rank; --out must be "
        "one shared folder (node 0 merges the parts into one dataset). Default: from SLURM (SLURM_NNODES) "
        "or torchrun (GROUP_WORLD_SIZE / NNODES), else 1",
    )
    parser.add_argument(
        "--node-rank",
        type=int,
        default=None,
        help="this machine, 0 .. num-nodes - 1. Default: SLURM_NODEID, GROUP_RANK or NODE_RANK",
    )
    parser.add_argument(
        "--node-timeout",
        type=float,
        default=86400.0,
        help="seconds node 0 waits for the other nodes' parts before it stops, naming the missing nodes",
    )
    parser.add_argument("--retry-skipped", action="store_true", help="try clips skipped by an earlier run again")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from talkface.prepare.nodes import resolve_nodes
    from talkface.prepare.settings import PrepareSettings, check_feature_options, check_paths

    # Everything is checked before torch, a landmark model or a clip is touched: a mistake is
    # reported in the first second, and nothing is created for a command that is refused.
    try:
        ratios = tuple(float(x) for x in args.split_ratios.split(","))
    except ValueError:
        raise TalkfaceError(
            f"--split-ratios must be three numbers like 0.8,0.1,0.1, got {args.split_ratios!r}"
        ) from None
    if len(ratios) != 3:
        raise TalkfaceError(f"--split-ratios needs three numbers (train,val,test), got {args.split_ratios!r}")
    options = dict(
        src=args.src,
        out=args.out,
        layout=args.layout,
        crop_size=args.crop,
        backend=args.backend,
        workers=args.workers,
        splits=tuple(s.strip() for s in args.splits.split(",") if s.strip()),
        window=args.window,
        stride=args.stride,
        split_ratios=ratios,
        identities=args.identities,
        av_offsets=args.av_offsets,
        video_only=args.video_only,
        retry_skipped=args.retry_skipped,
        progress=not args.no_progress,
    )
    options["num_nodes"], options["node_rank"] = resolve_nodes(args.num_nodes, args.node_rank, os.environ)
    options["node_timeout"] = args.node_timeout
    PrepareSettings(**options, features=None).check()
    check_feature_options(args.n_mels, args.context)
    check_paths(args.src, args.out)

    from talkface.audio import FeatureConfig
    from talkface.prepare import prepare_dataset

    features = FeatureConfig(kind=args.features, n_mels=args.n_mels, context=args.context)
    report = prepare_dataset(PrepareSettings(**options, features=features))
    if report.merged and report.total_samples == 0:
        raise TalkfaceError(
            f"nothing was prepared: all {len(report.skipped)} clips were skipped (see {args.out}/report.json)"
        )
    return 0
