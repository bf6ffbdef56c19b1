"""Train one stage-1 recipe with the paper's loss ablations and print their test metrics in one table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from talkface.commands.runs import read_test_metrics, run_talkface
from talkface.recipes import find_recipe, load_composed

# Each variant is a packaged loss set (configs/losses/landmark/), the same files the recipes use.
VARIANTS = {
    "reconstruction only (ATVGnet-style)": "losses/landmark/reconstruction_only",
    "+ temporal residual": "losses/landmark/temporal",
    "+ semantic (word detector)": "losses/landmark/semantic",
    "all terms (+ audio-word, + sync)": "losses/landmark/all",
}
COLUMNS = {
    "test/lmd_mouth": "mouth LMD (px)",
    "test/velocity_error": "velocity error (px/frame)",
    "test/word_acc_predicted": "word acc. (predicted)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", default="landmark/sample", help="stage-1 recipe: a packaged name or a YAML file"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"), help="folder for the runs and the table")
    parser.add_argument("--max-epochs", type=int, default=None, help="override the recipe's epochs (shorter runs)")
    parser.add_argument(
        "overrides", nargs="*", help="extra Lightning CLI overrides after --, e.g. -- --data.num_workers=2"
    )


def run(args: argparse.Namespace) -> int:
    find_recipe(args.config)  # a missing recipe fails here, before any training
    rows = {}
    for index, (name, loss_set) in enumerate(VARIANTS.items()):
        root = args.out / f"variant{index}"
        common = [
            "-c",
            args.config,
            "--trainer.default_root_dir",
            str(root),
            "--trainer.enable_progress_bar",
            "false",
            *args.overrides,
        ]
        losses = json.dumps(load_composed(loss_set)["model"]["init_args"]["losses"])
        fit = ["fit", *common, "--model.init_args.losses", losses]
        if args.max_epochs:
            fit += [
                "--trainer.max_epochs",
                str(args.max_epochs),
                "--model.init_args.lr_decay_epochs",
                str(args.max_epochs),
            ]
        started = time.perf_counter()
        print(f"talkface ablate: [{index + 1}/{len(VARIANTS)}] {name}", file=sys.stderr, flush=True)
        run_talkface(fit)
        test = [
            "test",
            *common,
            "--model.init_args.losses",
            losses,
            "--ckpt_path",
            "best",
            "--trainer.logger",
            "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.init_args.save_dir",
            str(root / "test"),
        ]
        run_talkface(test)
        rows[name] = read_test_metrics(root / "test") | {"minutes": (time.perf_counter() - started) / 60}
    table = markdown_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=2))
    (args.out / "ablation.md").write_text(table + "\n")
    print(table)
    return 0


def markdown_table(rows: dict[str, dict]) -> str:
    first = next(iter(rows.values()))
    baseline = {k.replace("still_identity/", ""): v for k, v in first.items() if "still_identity" in k}
    header = "| variant | " + " | ".join(COLUMNS.values()) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    lines.append(
        "| identity landmarks held still (baseline) | " + " | ".join(_fmt(baseline.get(k)) for k in COLUMNS) + " |"
    )
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(values.get(k)) for k in COLUMNS) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"
