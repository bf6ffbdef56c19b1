"""Pack finished samples into litdata's streaming format, one folder per split and field set.

`<out>/<split>/light/` holds what stage 1 reads (no frames); `<out>/<split>/full/` adds the JPEG
frames for stage 2. Each is a litdata dataset (chunks + index.json) that `StreamingDataset`
streams from local disk or object storage, each rank reading its own chunks.

Across nodes, each node packs its share as litdata's multi-node `optimize` does (chunks
`chunk-<node>-<i>.bin`, a node index `<node>-index.json`) and node 0 joins them with litdata's
own index merge (see talkface/prepare/nodes.py).

A published split folder carries the marker `.talkface-prepared`; a re-run replaces only a split
folder that prepare made (see talkface/prepare/settings.py). Any other `<out>/<split>` is the
user's and is never removed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from litdata.streaming.writer import BinaryWriter

from talkface.outputs import write_marker
from talkface.prepare.samples import FRAME_FIELDS, LIGHT_FIELDS
from talkface.prepare.settings import MARKER, SPLIT_PARTS, check_split_folder, split_is_ours

CHUNK_BYTES = "64MB"
NODE_INDEX = "-index.json"  # litdata's per-node index: <node>-index.json


class _NodeWriter(BinaryWriter):
    """A BinaryWriter whose chunks and index carry the node's rank (`chunk-<rank>-<i>.bin`), as
    litdata's optimizer names them, whatever distributed job it runs in: nodes' files never clash
    and litdata's merge orders them by rank."""

    def __init__(self, folder: Path, rank: int) -> None:
        super().__init__(str(folder), chunk_bytes=CHUNK_BYTES)
        self._rank = rank


class SplitPacker:
    """Writes one split's samples into `<folder>/light` and `<folder>/full` (any earlier content of
    `folder` is removed first)."""

    def __init__(self, folder: Path, rank: int = 0) -> None:
        self.folder = folder
        shutil.rmtree(folder, ignore_errors=True)
        self.light = _NodeWriter(folder / "light", rank)
        self.full = _NodeWriter(folder / "full", rank)
        self.count = 0
        self.frames = 0

    def add(self, sample: dict) -> None:
        self.light.add_item(self.count, {k: sample[k] for k in LIGHT_FIELDS})
        self.full.add_item(self.count, {k: sample[k] for k in LIGHT_FIELDS + FRAME_FIELDS})
        self.count += 1
        self.frames += len(sample["landmarks"])

    def close(self, node_rank: int | None = None) -> None:
        """Write the last chunks and the index: `index.json`, or with `node_rank` litdata's node
        index `<node_rank>-index.json` for `merge_node_parts`. Nothing when no sample was added."""
        if self.count == 0:
            return
        for writer in (self.light, self.full):
            writer.done()
            # Merge this single writer's index directly: `merge()` would wait for one index per
            # distributed rank when called inside a DDP job (prepare_data on rank 0).
            writer._merge_no_wait(node_rank=node_rank)


def merge_node_parts(parts: list[Path], partial: Path) -> None:
    """Join the nodes' packed parts of one split (in node order) into `partial`: their chunk files
    are linked (copied where the filesystem cannot link) and litdata merges their node indexes
    into one `index.json`, ordering them by node, so the samples come in single-node order."""
    shutil.rmtree(partial, ignore_errors=True)
    for part in SPLIT_PARTS:
        target = partial / part
        target.mkdir(parents=True)
        for folder in parts:
            if (folder / part).is_dir():
                for file in sorted((folder / part).iterdir()):
                    _link_or_copy(file, target / file.name)
        if not any(f.name.endswith(NODE_INDEX) for f in target.iterdir()):
            raise RuntimeError(f"no node index to merge in {target}")  # callers pass only parts with samples
        BinaryWriter(str(target), chunk_bytes=1)._merge_no_wait()  # <node>-index.json files → index.json


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # no second copy of the data on the same filesystem
    except OSError:
        shutil.copyfile(source, target)


def publish_split(out: Path, split: str, partial: Path | None) -> bool:
    """Move a packed split from `partial` to `<out>/<split>`, replacing an earlier one of ours.
    With no `partial` (no sample), remove a stale split of ours instead and return False."""
    final = out / split
    if final.exists() and not split_is_ours(final):
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        check_split_folder(out, split)  # raises: never remove the user's folder
    if partial is None:
        if final.exists():
            shutil.rmtree(final)  # a stale split of ours that has no sample any more
        return False
    write_marker(partial / MARKER, "prepare")
    previous = final.with_name(f".{final.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if final.exists():
        final.rename(previous)
    partial.rename(final)
    shutil.rmtree(previous, ignore_errors=True)
    return True
