"""Running `talkface` in tests: overrides that point any recipe at a tiny prepared sample on
the CPU, and a child-process runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.real_data import REPO


def data_overrides(prepared: Path, root: Path) -> list[str]:
    """Point any recipe at the tiny prepared sample and keep its outputs in a temp folder."""
    return [
        "--data.data_dir",
        str(prepared),
        "--data.raw_dir",
        "null",
        "--data.sample",
        "null",
        "--data.mix",
        "null",
        "--data.batch_size",
        "2",
        "--data.num_workers",
        "0",
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_progress_bar",
        "false",
    ]


def cpu_overrides() -> list[str]:
    return [
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "1",
        "--trainer.num_nodes",
        "1",
        "--trainer.precision",
        "32-true",
        "--trainer.strategy",
        "auto",
        "--trainer.sync_batchnorm",
        "false",
    ]


def small_model(recipe: str) -> list[str]:
    if "generator" in recipe:
        return ["--model.init_args.base_channels", "8", "--model.init_args.eval_frame_stride", "8"]
    if "sync" in recipe:
        return ["--model.init_args.width", "8", "--model.init_args.centres_per_clip", "4"]
    return ["--model.init_args.hidden", "32", "--model.init_args.audio_dim", "32"]


def run_cli(
    args: list[str], cwd: Path = REPO, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "talkface.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "WANDB_MODE": "disabled", **(env or {})},
        timeout=timeout,
    )


def generate_args(files: dict, out: Path, **changes) -> list[str]:
    """`talkface generate` arguments from a dict of image / audio / landmark / generator paths;
    `changes` replaces any option (`**{"landmark-ckpt": path}`)."""
    options = {
        "image": files["image"],
        "audio": files["audio"],
        "landmark-ckpt": files["landmark"],
        "generator-ckpt": files["generator"],
        "out": out,
    } | changes
    return ["generate", "--quiet", *[part for key, value in options.items() for part in (f"--{key}", str(value))]]
