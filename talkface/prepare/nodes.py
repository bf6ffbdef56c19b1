"""Preparation across machines: which clips a node prepares, where its part goes, when all are done.

All nodes run the same `talkface prepare` on one shared `--out` folder. Node R processes its share
of the clips (resumable in the shared `<out>/work/`, like a single-node run) and packs it with
litdata's writer as node R would in litdata's own multi-node `optimize`: chunks
`chunk-R-<i>.bin` and a node index `R-index.json`, in `<out>/.nodes/R/<split>/{light,full}/`, then
`<out>/.nodes/R/done.json`. Node 0 waits for every node's `done.json`, and litdata's merge joins
the node indexes in node order into one `index.json` per split and field set (see
`packing.merge_node_parts`), so the result streams like a single-node dataset.

Each node's share is, per split, one contiguous block of the sorted clips: joining the parts in
node order gives exactly the single-node sample order. This module imports no torch or litdata.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from talkface.errors import TalkfaceError
from talkface.prepare.sources import LRW_SPLITS, Source

NODES_FOLDER = ".nodes"  # <out>/.nodes/<rank>/: one node's packed part until node 0 merges it
DONE = "done.json"
POLL_SECONDS = 2.0
LOG_EVERY_SECONDS = 60.0

# (number of nodes, this node's rank), first match wins: SLURM (srun, one task per node), torchrun
# (its node group), launch scripts and Lightning, litdata's optimizer.
NODE_ENVIRONMENT = (
    ("SLURM_NNODES", "SLURM_NODEID"),
    ("GROUP_WORLD_SIZE", "GROUP_RANK"),
    ("NNODES", "NODE_RANK"),
    ("DATA_OPTIMIZER_NUM_NODES", "DATA_OPTIMIZER_NODE_RANK"),
)


def check_nodes(num_nodes: int, node_rank: int) -> None:
    if num_nodes < 1:
        raise TalkfaceError(f"--num-nodes must be at least 1, got {num_nodes}")
    if not 0 <= node_rank < num_nodes:
        raise TalkfaceError(
            f"--node-rank must be between 0 and {num_nodes - 1} (--num-nodes {num_nodes}), got {node_rank}"
        )


def resolve_nodes(num_nodes: int | None, node_rank: int | None, environ: Mapping[str, str]) -> tuple[int, int]:
    """The options when given, else the launcher's environment (SLURM, torchrun, ...), else one node."""
    found = next(((n, r) for n, r in NODE_ENVIRONMENT if environ.get(n) and environ.get(r)), None)
    if num_nodes is None and found is not None:
        num_nodes = _whole_number(environ, found[0])
        _check_one_process_per_node(environ, num_nodes)
    if node_rank is None and found is not None and num_nodes == _whole_number(environ, found[0]):
        node_rank = _whole_number(environ, found[1])
    if num_nodes is None:
        if node_rank is not None:
            raise TalkfaceError("--node-rank needs --num-nodes (or SLURM_NNODES / GROUP_WORLD_SIZE / NNODES set)")
        num_nodes = 1
    if node_rank is None:
        if num_nodes > 1:
            raise TalkfaceError(
                f"--num-nodes {num_nodes} needs --node-rank (or SLURM_NODEID / GROUP_RANK / NODE_RANK set)"
            )
        node_rank = 0
    check_nodes(num_nodes, node_rank)
    return num_nodes, node_rank


def _whole_number(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise TalkfaceError(f"environment variable {name} must be a whole number, got {environ[name]!r}") from None


def _check_one_process_per_node(environ: Mapping[str, str], num_nodes: int) -> None:
    """Two processes of one node would prepare the same share into the same part: refuse."""
    per_node = environ.get("LOCAL_WORLD_SIZE")  # torchrun --nproc-per-node
    tasks = environ.get("SLURM_NTASKS")
    if (per_node and per_node.isdigit() and int(per_node) > 1) or (
        environ.get("SLURM_NNODES") and tasks and tasks.isdigit() and int(tasks) > num_nodes
    ):
        raise TalkfaceError(
            "talkface prepare runs once per node (it starts --workers processes itself): "
            "launch it with one task per node (srun --ntasks-per-node 1, torchrun --nproc-per-node 1)"
        )


def node_share(sources: list[Source], num_nodes: int, node_rank: int) -> list[Source]:
    """Node `node_rank`'s clips: per split, one contiguous block of the sorted clips (blocks differ
    in size by at most one clip), so the parts joined in node order are the single-node order."""
    share = []
    for split in LRW_SPLITS:
        in_split = [s for s in sources if s.split == split]
        start = len(in_split) * node_rank // num_nodes
        stop = len(in_split) * (node_rank + 1) // num_nodes
        share.extend(in_split[start:stop])
    return share


def share_digest(share: list[Source], num_nodes: int) -> str:
    """Names what a part holds, so that node 0 never merges a part made for other clips or nodes."""
    text = "\n".join([str(num_nodes)] + [f"{s.split} {s.id}" for s in share])
    return hashlib.sha256(text.encode()).hexdigest()


def part_folder(out: Path, node_rank: int) -> Path:
    return Path(out) / NODES_FOLDER / str(node_rank)


def finished_parts(out: Path, sources: list[Source], num_nodes: int) -> tuple[list[dict], list[int]]:
    """The `done.json` of every node whose part matches its share now, and the nodes still missing."""
    done, missing = [], []
    for rank in range(num_nodes):
        path = part_folder(out, rank) / DONE
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = None
        if record is None or record.get("share") != share_digest(node_share(sources, num_nodes, rank), num_nodes):
            missing.append(rank)
        else:
            done.append(record)
    return done, missing


def wait_for_parts(out: Path, sources: list[Source], num_nodes: int, timeout: float) -> list[dict]:
    """Node 0: every node's `done.json`, in node order; one clear error naming the nodes that did
    not finish within `timeout` seconds."""
    started = last_log = time.monotonic()
    while True:
        done, missing = finished_parts(out, sources, num_nodes)
        if not missing:
            return done
        waited = time.monotonic() - started
        if waited >= timeout:
            raise TalkfaceError(
                f"node(s) {', '.join(map(str, missing))} of {num_nodes} have not finished their part of {out} "
                f"after {waited:.0f} s: run the same talkface prepare with --node-rank "
                f"{', '.join(map(str, missing))} (same --out, a shared folder), then node 0 again to merge"
            )
        if time.monotonic() - last_log >= LOG_EVERY_SECONDS:
            last_log = time.monotonic()
            print(
                f"talkface prepare: node 0 waits for node(s) {', '.join(map(str, missing))} to finish their part "
                f"({waited:.0f} s so far)",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(min(POLL_SECONDS, max(timeout - waited, 0.01)))
