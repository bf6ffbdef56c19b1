"""Build the built-in sample dataset in LRW layout.

Synthetic LRW: for each chosen LRW word, clips of a real face photo (skimage's astronaut, plus
any photos given with --faces) saying the word with an espeak-ng voice, written as
OUT/WORD/{train,val,test}/WORD_00001.mp4 + .txt. The same --seed gives the same bytes.

    talkface sample --out data/sample --num-words 10 --clips-per-word 5
    talkface sample --out data/sample --words ABOUT,ABSOLUTELY --train 4 --val 1 --test 1
"""

from __future__ import annotations

import argparse
import os

from talkface.errors import TalkfaceError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, help="output folder (LRW layout), new or empty; re-running completes it"
    )
    parser.add_argument(
        "--num-words", type=int, default=10, help="how many LRW words, spread over the alphabet (default 10)"
    )
    parser.add_argument("--words", help="comma-separated LRW words instead, e.g. ABOUT,ABSOLUTELY")
    parser.add_argument("--clips-per-word", type=int, default=5, help="clips per word, split ~60/20/20 (default 5)")
    parser.add_argument("--train", type=int, help="clips per word in train (overrides the split of --clips-per-word)")
    parser.add_argument("--val", type=int, help="clips per word in val")
    parser.add_argument("--test", type=int, help="clips per word in test")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed gives the same files (default 0)"
    )
    parser.add_argument("--faces", metavar="DIR", help="folder of extra face photos to animate besides the astronaut")
    parser.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="parallel processes (default: up to 4 cores)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # Options and the output folder are checked before anything heavy is imported or made.
    from talkface.outputs import check_output_folder
    from talkface.prepare.settings import check_workers

    if args.seed < 0:
        raise TalkfaceError(f"--seed must be >= 0, got {args.seed}")
    check_workers(args.workers)
    check_output_folder(args.out)
    from talkface.sample import build_sample, split_counts

    words = [w for w in args.words.split(",") if w.strip()] if args.words else None
    if args.words is not None and not words:
        raise TalkfaceError("--words is empty: give comma-separated LRW words, e.g. ABOUT,ABSOLUTELY")
    splits = None
    if any(n is not None for n in (args.train, args.val, args.test)):
        base = split_counts(args.clips_per_word)
        splits = {
            name: (value if value is not None else base[name])
            for name, value in (("train", args.train), ("val", args.val), ("test", args.test))
        }
    summary = build_sample(
        args.out,
        num_words=args.num_words,
        words=words,
        clips_per_word=args.clips_per_word,
        splits=splits,
        seed=args.seed,
        faces_dir=args.faces,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(summary)
    return 0
