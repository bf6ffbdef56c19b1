"""Measure speed and memory on this machine (preparation, loaders, training, generation); table + JSON."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("benchmark.json"), help="JSON results (default benchmark.json)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the sample, data and videos here (default: a temporary folder)"
    )
    parser.add_argument("--words", type=int, default=20, help="words in the benchmark sample (default 20)")
    parser.add_argument(
        "--clips-per-word", type=int, default=6, help="clips per word (default 6: 4 train, 1 val, 1 test)"
    )
    parser.add_argument("--workers", type=int, default=2, help="preparation processes (default 2)")
    parser.add_argument("--loader-workers", type=int, default=2, help="data loader workers (default 2)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[128, 256], help="generation crop sizes (default 128 256)"
    )
    parser.add_argument("--short-seconds", type=float, default=10.0, help="short audio for generation (default 10)")
    parser.add_argument("--long-seconds", type=float, default=120.0, help="long audio, for peak memory (default 120)")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes everywhere: checks that the benchmark runs, not speed"
    )


def run(args: argparse.Namespace) -> int:
    from talkface.benchmark.report import format_report
    from talkface.benchmark.runner import BenchmarkSettings, run_benchmark

    with tempfile.TemporaryDirectory(prefix="talkface-benchmark-") as scratch:
        settings = BenchmarkSettings(
            workdir=args.workdir or Path(scratch),
            words=args.words,
            clips_per_word=args.clips_per_word,
            workers=args.workers,
            loader_workers=args.loader_workers,
            sizes=tuple(args.sizes),
            short_seconds=args.short_seconds,
            long_seconds=args.long_seconds,
            device=args.device,
        )
        if args.quick:
            settings = replace(
                settings,
                words=4,
                clips_per_word=6,
                naive_clips=2,
                train_steps=2,
                sizes=(128,),
                short_seconds=2.0,
                long_seconds=4.0,
                loader_workers=min(args.loader_workers, 1),
            )
        results = run_benchmark(settings, say=lambda line: print(f"talkface benchmark: {line}", flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(f".{args.out.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(results, indent=2))
    partial.replace(args.out)
    print(format_report(results))
    print(f"talkface benchmark: done in {results['total_seconds'] / 60:.1f} min; results in {args.out}")
    return 0
