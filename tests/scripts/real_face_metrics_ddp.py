"""Run by test_real_face_metrics in a subprocess: the real-face metrics in 2 CPU processes (gloo).

Usage: python real_face_metrics_ddp.py OUT_DIR. Each rank updates the metrics with its (uneven)
share of a fixed random dataset — clips of unequal length (masks), a clip whose real mouth does
not move (skipped), one whose generated mouth does not (scored 0), flat photos on both ranks
(sharpness skipped) — calls `compute()` and the count methods (which sync the states over the
ranks) and writes them to OUT_DIR/rank{R}.json.
The test compares them with one process on the whole dataset. The dataset and the metric set are
functions here so the test builds exactly the same ones.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from talkface.metrics import MouthOpeningCorrelation, SharpnessRatio, UpperFacePSNR

WORLD_SIZE = 2
# Uneven batch sizes and an uneven split (3 batches vs 2): a mean of per-rank means would differ.
BATCH_SIZES = (3, 1, 2, 4, 2)
RANK_BATCHES = {0: (0, 1, 2), 1: (3, 4)}
FRAMES, IMAGE_SIZE = 6, 32


def make_batches(seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """The fixed dataset: landmark clips with masks and special clips, generated clips and photos."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for index, size in enumerate(BATCH_SIZES):
        real = 0.3 + 0.4 * torch.rand(size, FRAMES, 68, 2, generator=generator)
        generated = real + 0.05 * torch.randn(size, FRAMES, 68, 2, generator=generator)
        mask = torch.rand(size, FRAMES, generator=generator) > 0.2
        if index == 0:
            real[0] = real[0, :1]  # the real mouth does not move: skipped
        if index == 3:
            generated[1] = generated[1, :1]  # the generated mouth does not move: counts as 0
        photo = torch.rand(size, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
        if index in (0, 3):
            photo[0] = 0.5  # a flat photo: its frames get no sharpness ratio (skipped, counted)
        noise = 0.1 * torch.randn(size, FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
        batches.append(
            {
                "generated_landmarks": generated,
                "real_landmarks": real,
                "mask": mask,
                "frames": (photo.unsqueeze(1) + noise).clamp(0, 1),
                "photo": photo,
                "photo_landmarks": 0.2 + 0.6 * torch.rand(size, 68, 2, generator=generator),
            }
        )
    return batches


def build_metrics() -> dict[str, torch.nn.Module]:
    return {
        "mouth_opening_correlation": MouthOpeningCorrelation(),
        "upper_face_psnr": UpperFacePSNR(),
        "sharpness_ratio": SharpnessRatio(),
    }


def update_all(metrics: dict, batches: list[dict[str, torch.Tensor]]) -> None:
    for batch in batches:
        metrics["mouth_opening_correlation"].update(
            batch["generated_landmarks"], batch["real_landmarks"], batch["mask"]
        )
        for name in ("upper_face_psnr", "sharpness_ratio"):
            metrics[name].update(batch["frames"], batch["photo"], batch["photo_landmarks"], batch["mask"])


def results(metrics: dict) -> dict[str, float | dict[str, int]]:
    """Every value and count the test compares (each call syncs under DDP)."""
    values: dict[str, float | dict[str, int]] = {name: metric.compute().item() for name, metric in metrics.items()}
    values["clip_counts"] = metrics["mouth_opening_correlation"].clip_counts()
    values["frame_counts"] = metrics["sharpness_ratio"].frame_counts()
    return values


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE)
    try:
        batches = make_batches()
        metrics = build_metrics()
        update_all(metrics, [batches[i] for i in RANK_BATCHES[rank]])
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(results(metrics)))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    mp.spawn(_worker, args=(free_port(), sys.argv[1]), nprocs=WORLD_SIZE, join=True)
