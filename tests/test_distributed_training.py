"""Training at scale on this CPU: 2-process DDP, two simulated nodes, and resume after SIGKILL.

Every multi-process run is a subprocess (DDP inside pytest would re-run pytest as rank 1).
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import data_overrides, run_cli, small_model
from tests.helpers.real_data import REPO

pytestmark = pytest.mark.slow

RECIPES = {
    "landmark": "configs/landmark/sample.yaml",
    "generator": "configs/generator/sample.yaml",
    "sync": "configs/sync/real.yaml",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_briefly(recipe: str, prepared: Path, root: Path, steps: int = 2) -> Path:
    result = run_cli(
        [
            "fit",
            "-c",
            recipe,
            *small_model(recipe),
            *data_overrides(prepared, root),
            "--trainer.max_steps",
            str(steps),
            "--trainer.limit_val_batches",
            "0",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return next(root.rglob("last.ckpt"))


def validation_metrics(root: Path) -> dict[str, float]:
    rows = list(csv.DictReader(next(root.rglob("metrics.csv")).open()))
    values = {k: float(v) for row in rows for k, v in row.items() if k.startswith("val/") and v}
    assert values, rows
    return values


@pytest.mark.parametrize("stage", ["landmark", "generator", "sync"])
def test_two_process_ddp_validation_equals_one_process(stage, tiny_prepared, tmp_path):
    recipe = RECIPES[stage]
    checkpoint = train_briefly(recipe, tiny_prepared, tmp_path / "train")
    results = {}
    for devices in (1, 2):
        root = tmp_path / f"validate{devices}"
        result = run_cli(
            [
                "validate",
                "-c",
                recipe,
                *small_model(recipe),
                *data_overrides(tiny_prepared, root),
                "--ckpt_path",
                str(checkpoint),
                "--trainer.devices",
                str(devices),
                "--trainer.strategy",
                "ddp" if devices == 2 else "auto",
                "--trainer.logger",
                "lightning.pytorch.loggers.CSVLogger",
                "--trainer.logger.init_args.save_dir",
                str(root),
            ],
            env={"MASTER_PORT": str(free_port())},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        results[devices] = validation_metrics(root)
    assert results[1].keys() == results[2].keys()
    for name, value in results[1].items():
        assert results[2][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def test_a_ddp_run_closes_its_process_group_before_the_interpreter_exits(tiny_prepared, tmp_path):
    """A gloo group left open at interpreter shutdown can abort a finished run (SIGABRT, seen in
    CI after a 2-process validation), so the CLI closes it after a clean run."""
    recipe = RECIPES["landmark"]
    args = [
        "fit",
        "-c",
        recipe,
        *small_model(recipe),
        *data_overrides(tiny_prepared, tmp_path),
        "--trainer.max_steps",
        "1",
        "--trainer.limit_val_batches",
        "0",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "1",
        "--trainer.strategy",
        "ddp",
    ]
    script = (
        "import sys, torch.distributed as dist\n"
        "from talkface.training_cli import run_lightning\n"
        f"code = run_lightning({args!r})\n"
        "print('exit', code, 'group open', dist.is_initialized())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "WANDB_MODE": "disabled", "MASTER_PORT": str(free_port())},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "exit 0 group open False" in result.stdout, result.stdout[-2000:]


def test_two_simulated_nodes_train_through_talkface_fit(tiny_prepared, tmp_path):
    recipe = RECIPES["landmark"]
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "torchrun"),
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "-m",
        "talkface.cli",
        "fit",
        "-c",
        recipe,
        *small_model(recipe),
        *data_overrides(tiny_prepared, tmp_path),
        "--trainer.num_nodes",
        "2",
        "--trainer.devices",
        "1",
        "--trainer.strategy",
        "ddp",
        "--trainer.max_epochs",
        "2",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    nodes = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    checkpoints = list(tmp_path.rglob("last.ckpt"))
    assert len(checkpoints) == 1
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=False)
    # 4 words x 4 train clips = 16 clips; global batch 2 over 2 nodes → 8 steps per epoch, 2 epochs.
    assert state["global_step"] == 16


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny_prepared, tmp_path):
    recipe = RECIPES["landmark"]
    args = [
        sys.executable,
        "-m",
        "talkface.cli",
        "fit",
        "-c",
        recipe,
        *small_model(recipe),
        *data_overrides(tiny_prepared, tmp_path),
        "--trainer.max_epochs",
        "30",
        "--trainer.check_val_every_n_epoch",
        "1",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(tmp_path.rglob("last.ckpt")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = next(tmp_path.rglob("last.ckpt"))
    shutil.copy(saved, tmp_path / "at_kill.ckpt")
    step_at_kill = torch.load(tmp_path / "at_kill.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert 0 < step_at_kill < 30 * 8

    resumed = subprocess.run(
        args + ["--ckpt_path", "last"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "using checkpoint" in resumed.stderr
    final = max(tmp_path.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    state = torch.load(final, map_location="cpu", weights_only=False)
    assert state["global_step"] == 30 * 8 and state["epoch"] == 29
    # The resumed run's log starts where the killed one stopped, not at step 0.
    logs = sorted(tmp_path.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    first_logged_step = min(int(row["step"]) for row in csv.DictReader(logs[-1].open()))
    assert first_logged_step >= step_at_kill
