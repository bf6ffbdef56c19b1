"""Run by test_datamodule in a subprocess: 2-process CPU DDP, each rank records the ids it saw."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch

from datamodules import LRWDataModule


class RecordIds(L.LightningModule):
    data_fields = ("id", "landmarks")

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.seen: list[str] = []

    def validation_step(self, batch, batch_index):
        self.seen.extend(batch["id"])

    def on_validation_epoch_end(self):
        out = Path(sys.argv[2]) / f"rank{self.global_rank}.json"
        out.write_text(json.dumps(self.seen))


if __name__ == "__main__":
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    datamodule = LRWDataModule(data_dir, batch_size=2, num_workers=0, val_split=sys.argv[3])
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.validate(RecordIds(), datamodule=datamodule)
