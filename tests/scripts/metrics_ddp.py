"""Run by test_metrics in a subprocess: every metric in 2 CPU processes (gloo), each on its share.

Usage: python metrics_ddp.py OUT_DIR. Each rank updates the metrics with its (uneven) share of a
fixed random dataset, calls `compute()` (which syncs the states over the ranks) and writes the
values to OUT_DIR/rank{R}.json. The test compares them with one process on the whole dataset.
The dataset and the metric set are functions here so the test builds exactly the same ones.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from talkface.metrics import (
    FramePSNR,
    FrameSSIM,
    LandmarkDistance,
    LandmarkVelocityError,
    MouthPSNR,
    MouthSSIM,
    WordAccuracy,
)

WORLD_SIZE = 2
# Uneven batch sizes and an uneven split (3 batches vs 2): a mean of per-rank means would differ.
BATCH_SIZES = (3, 1, 2, 4, 2)
RANK_BATCHES = {0: (0, 1, 2), 1: (3, 4)}
FRAMES, CLASSES, IMAGE_SIZE = 6, 5, 32


def make_batches(seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """The fixed dataset: landmarks with masks, word logits with unlabelled clips, images."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for size in BATCH_SIZES:
        target = torch.rand(size, FRAMES, 68, 2, generator=generator)
        batches.append(
            {
                "pred": target + 0.02 * torch.randn(size, FRAMES, 68, 2, generator=generator),
                "target": target,
                "mask": torch.rand(size, FRAMES, generator=generator) > 0.3,
                "logits": torch.randn(size, CLASSES, generator=generator),
                "labels": torch.randint(-1, CLASSES, (size,), generator=generator),
                "image_target": torch.rand(size, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator),
                "image_noise": 0.1 * torch.randn(size, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator),
                "face": 0.3 + 0.4 * torch.rand(size, 68, 2, generator=generator),
            }
        )
    for batch in batches:
        batch["image_pred"] = (batch["image_target"] + batch["image_noise"]).clamp(0, 1)
    return batches


def build_metrics() -> dict[str, torch.nn.Module]:
    return {
        "lmd_mouth": LandmarkDistance("mouth"),
        "lmd_face": LandmarkDistance("face"),
        "velocity_mouth": LandmarkVelocityError("mouth"),
        "velocity_face": LandmarkVelocityError("face"),
        "word_accuracy": WordAccuracy(),
        "frame_psnr": FramePSNR(),
        "frame_ssim": FrameSSIM(),
        "mouth_psnr": MouthPSNR(),
        "mouth_ssim": MouthSSIM(),
    }


def update_all(metrics: dict, batches: list[dict[str, torch.Tensor]]) -> None:
    for batch in batches:
        for name in ("lmd_mouth", "lmd_face", "velocity_mouth", "velocity_face"):
            metrics[name].update(batch["pred"], batch["target"], batch["mask"])
        metrics["word_accuracy"].update(batch["logits"], batch["labels"])
        metrics["frame_psnr"].update(batch["image_pred"], batch["image_target"])
        metrics["frame_ssim"].update(batch["image_pred"], batch["image_target"])
        metrics["mouth_psnr"].update(batch["image_pred"], batch["image_target"], batch["face"])
        metrics["mouth_ssim"].update(batch["image_pred"], batch["image_target"], batch["face"])


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE)
    try:
        batches = make_batches()
        metrics = build_metrics()
        update_all(metrics, [batches[i] for i in RANK_BATCHES[rank]])
        values = {name: metric.compute().item() for name, metric in metrics.items()}  # syncs
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(values))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    mp.spawn(_worker, args=(free_port(), sys.argv[1]), nprocs=WORLD_SIZE, join=True)
