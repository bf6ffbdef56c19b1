"""Pack finished samples into litdata's streaming format, one folder per split and field set.

`<out>/<split>/light/` holds what stage 1 reads (no frames); `<out>/<split>/full/` adds the JPEG
frames for stage 2. Each is a litdata dataset (chunks + index.json) that `StreamingDataset`
streams from local disk or object storage, each rank reading its own chunks.

A published split folder carries the marker `.talkface-prepared`; a re-run replaces only a split
folder that prepare made (see talkface/prepare/settings.py). Any other `<out>/<split>` is the
user's and is never removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from litdata.streaming.writer import BinaryWriter

from talkface.outputs import write_marker
from talkface.prepare.samples import FRAME_FIELDS, LIGHT_FIELDS
from talkface.prepare.settings import MARKER, check_split_folder, split_is_ours

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
        """Publish the split, replacing an earlier one of ours; False (and nothing published)
        when it holds no sample."""
        if self.final.exists() and not split_is_ours(self.final):
            shutil.rmtree(self.partial, ignore_errors=True)
            check_split_folder(self.final.parent, self.final.name)  # raises: never remove the user's folder
        if self.count == 0:
            shutil.rmtree(self.partial, ignore_errors=True)
            if self.final.exists():
                shutil.rmtree(self.final)  # a stale split of ours that has no sample any more
            return False
        for writer in (self.light, self.full):
            writer.done()
            # Merge this single writer's index directly: `merge()` would wait for one index per
            # distributed rank when called inside a DDP job (prepare_data on rank 0).
            writer._merge_no_wait()
        write_marker(self.partial / MARKER, "prepare")
        previous = self.final.with_name(f".{self.final.name}.previous")
        shutil.rmtree(previous, ignore_errors=True)
        if self.final.exists():
            self.final.rename(previous)
        self.partial.rename(self.final)
        shutil.rmtree(previous, ignore_errors=True)
        return True
