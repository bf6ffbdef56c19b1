"""Pack finished samples into litdata's streaming format, one folder per split and field set.

`<out>/<split>/light/` holds what stage 1 reads (no frames); `<out>/<split>/full/` adds the JPEG
frames for stage 2. Each is a litdata dataset (chunks + index.json) that `StreamingDataset`
streams from local disk or object storage, each rank reading its own chunks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from litdata.streaming.writer import BinaryWriter

from talkface.prepare.samples import FRAME_FIELDS, LIGHT_FIELDS

CHUNK_BYTES = "64MB"


class SplitPacker:
    """Writes one split into `<out>/.<split>.partial` and moves it to `<out>/<split>` when done."""

    def __init__(self, out: Path, split: str) -> None:
        self.final = out / split
        self.partial = out / f".{split}.partial"
        shutil.rmtree(self.partial, ignore_errors=True)
        self.light = BinaryWriter(str(self.partial / "light"), chunk_bytes=CHUNK_BYTES)
        self.full = BinaryWriter(str(self.partial / "full"), chunk_bytes=CHUNK_BYTES)
        self.count = 0
        self.frames = 0

    def add(self, sample: dict) -> None:
        self.light.add_item(self.count, {k: sample[k] for k in LIGHT_FIELDS})
        self.full.add_item(self.count, {k: sample[k] for k in LIGHT_FIELDS + FRAME_FIELDS})
        self.count += 1
        self.frames += len(sample["landmarks"])

    def finish(self) -> bool:
        """Publish the split; False (and nothing published) when it holds no sample."""
        shutil.rmtree(self.final, ignore_errors=True)
        if self.count == 0:
            shutil.rmtree(self.partial, ignore_errors=True)
            return False
        for writer in (self.light, self.full):
            writer.done()
            # Merge this single writer's index directly: `merge()` would wait for one index per
            # distributed rank when called inside a DDP job (prepare_data on rank 0).
            writer._merge_no_wait()
        self.partial.rename(self.final)
        return True
