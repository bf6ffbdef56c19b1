"""What the loaders deliver next to what a training step consumes, for both stages.

The loader is timed alone (iterating the train split with its workers); the training step is
timed alone too, by a real Lightning fit over batches already in memory, so neither waits on the
other. A loader must deliver several times what the step consumes, or the GPU/CPU starves.
"""

from __future__ import annotations

import logging
import time
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules import LRWDataModule
from lightning_modules import FaceGenModule, LandmarkModule
from talkface.errors import TalkfaceError

# The built-in recipes' models (configs/*/sample.yaml).
STAGES = {
    "stage 1 (landmarks)": (LandmarkModule, {"hidden": 128, "audio_dim": 128, "layers": 2}, 16),
    "stage 2 (face generator)": (
        FaceGenModule,
        {"image_size": 128, "base_channels": 16, "depth": 4, "frames_per_clip": 1},
        8,
    ),
}


def loader_rate(data_dir, model_class, batch_size: int, workers: int) -> tuple[dict, list[dict]]:
    """Samples/s of one epoch of the train loader, and a few of its batches for the step timing.

    Timed from the first batch on (worker start-up excluded) when the epoch has 3 batches or more.
    """
    data = LRWDataModule(
        data_dir=str(data_dir), batch_size=batch_size, num_workers=workers, fields=list(model_class.data_fields)
    )
    data.setup("fit")
    kept, sizes, times = [], [], []
    started = time.perf_counter()
    for batch in data.train_dataloader():
        times.append(time.perf_counter())
        sizes.append(len(batch["id"]))
        if len(kept) < 4:
            kept.append(batch)
    if not sizes:
        raise TalkfaceError(
            f"the train split has fewer clips than one batch of {batch_size}; use more --words or --clips-per-word"
        )
    if len(sizes) >= 3:
        count, seconds = sum(sizes[1:]), times[-1] - times[0]
    else:
        count, seconds = sum(sizes), times[-1] - started
    return {
        "batch_size": batch_size,
        "workers": workers,
        "samples": count,
        "batches": len(sizes),
        "samples_per_second": round(count / seconds, 1),
    }, kept


def training_rate(model: L.LightningModule, batches: list[dict], steps: int, accelerator: str, precision: str) -> dict:
    """Samples/s of real training steps (forward, backward, optimiser) on batches held in memory."""
    timer = _StepTimer(warmup=2)
    lightning_logger = logging.getLogger("lightning.pytorch")
    level = lightning_logger.level
    lightning_logger.setLevel(logging.WARNING)  # quiet for the measurement, restored after it
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning's advice about loaders and loggers is not for a benchmark
            trainer.fit(model, train_dataloaders=DataLoader(_Repeat(batches, steps + timer.warmup), batch_size=None))
    finally:
        lightning_logger.setLevel(level)
    batch_size = len(batches[0]["id"])
    seconds = sum(timer.durations)
    return {
        "batch_size": batch_size,
        "steps": len(timer.durations),
        "accelerator": accelerator,
        "precision": precision,
        "seconds_per_step": round(seconds / len(timer.durations), 4),
        "samples_per_second": round(batch_size * len(timer.durations) / seconds, 1),
    }


class _Repeat(Dataset):
    def __init__(self, batches: list[dict], length: int) -> None:
        self.batches, self.length = batches, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batches[index % len(self.batches)]


class _StepTimer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.durations, self._start, self._seen = warmup, [], 0.0, 0

    def on_train_batch_start(self, trainer, module, batch, batch_index) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._seen += 1
        if self._seen > self.warmup:
            self.durations.append(time.perf_counter() - self._start)
