"""`talkface prepare` across machines: each node prepares its share, node 0 merges with litdata's
node-index merge, and the result equals a single-node preparation sample for sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from litdata import StreamingDataset

from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.prepare.nodes import DONE, node_share, part_folder, resolve_nodes, share_digest, wait_for_parts
from talkface.prepare.sources import Source
from tests.helpers.media_factory import lrw_tree


def sources(counts: dict[str, int]) -> list[Source]:
    found = [
        Source(id=f"W/{split}/W_{i:05d}", path=Path(f"W_{i}.mp4"), split=split)
        for split, count in counts.items()
        for i in range(count)
    ]
    return sorted(found, key=lambda s: s.id)


@pytest.mark.parametrize("num_nodes", [1, 2, 3, 7])
def test_node_shares_are_disjoint_blocks_that_join_in_single_node_order(num_nodes):
    found = sources({"train": 10, "val": 3, "test": 1})
    shares = [node_share(found, num_nodes, rank) for rank in range(num_nodes)]
    for split in ("train", "val", "test"):
        joined = [s.id for share in shares for s in share if s.split == split]
        assert joined == [s.id for s in found if s.split == split]  # every clip once, in order
        sizes = [sum(s.split == split for s in share) for share in shares]
        assert max(sizes) - min(sizes) <= 1
    assert node_share(found, 2, 1) == node_share(list(found), 2, 1)  # deterministic


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (1, 0)),
        ({"SLURM_NNODES": "4", "SLURM_NODEID": "3", "SLURM_NTASKS": "4"}, (4, 3)),
        ({"GROUP_WORLD_SIZE": "2", "GROUP_RANK": "1", "LOCAL_WORLD_SIZE": "1"}, (2, 1)),
        ({"NNODES": "3", "NODE_RANK": "2"}, (3, 2)),
        ({"SLURM_NNODES": "2", "SLURM_NODEID": "0", "NODE_RANK": "1", "NNODES": "2"}, (2, 0)),  # SLURM first
        ({"NODE_RANK": "1"}, (1, 0)),  # a rank without a node count is not a multi-node launch
    ],
)
def test_nodes_come_from_the_launcher_environment(environ, expected):
    assert resolve_nodes(None, None, environ) == expected


def test_options_win_over_the_environment():
    environ = {"SLURM_NNODES": "4", "SLURM_NODEID": "3"}
    assert resolve_nodes(2, 1, environ) == (2, 1)
    assert resolve_nodes(4, None, environ) == (4, 3)  # the rank of the same launch


@pytest.mark.parametrize(
    ("num_nodes", "node_rank", "environ", "message"),
    [
        (2, 2, {}, "--node-rank must be between 0 and 1 .--num-nodes 2., got 2"),
        (2, -1, {}, "--node-rank must be between 0 and 1"),
        (0, 0, {}, "--num-nodes must be at least 1, got 0"),
        (2, None, {}, "--num-nodes 2 needs --node-rank"),
        (None, 1, {}, "--node-rank needs --num-nodes"),
        (None, None, {"SLURM_NNODES": "2", "SLURM_NODEID": "x"}, "SLURM_NODEID must be a whole number, got 'x'"),
        (None, None, {"SLURM_NNODES": "2", "SLURM_NODEID": "5"}, "--node-rank must be between 0 and 1"),
        (None, None, {"GROUP_WORLD_SIZE": "2", "GROUP_RANK": "0", "LOCAL_WORLD_SIZE": "8"}, "once per node"),
        (None, None, {"SLURM_NNODES": "2", "SLURM_NODEID": "0", "SLURM_NTASKS": "8"}, "once per node"),
    ],
)
def test_bad_node_settings_are_one_clear_line(num_nodes, node_rank, environ, message):
    with pytest.raises(TalkfaceError, match=message):
        resolve_nodes(num_nodes, node_rank, environ)


def test_bad_node_options_fail_on_the_command_line_before_any_work(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    out = tmp_path / "out"
    common = ["prepare", "--src", str(tmp_path / "src"), "--out", str(out)]
    assert main([*common, "--num-nodes", "2", "--node-rank", "2"]) == 2
    assert main([*common, "--num-nodes", "2", "--node-rank", "0", "--node-timeout", "0"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        "talkface prepare: error: --node-rank must be between 0 and 1 (--num-nodes 2), got 2",
        "talkface prepare: error: --node-timeout must be a positive number of seconds, got 0.0",
    ]
    assert not out.exists()


def test_node_0_names_the_nodes_whose_part_is_missing(tmp_path):
    found = sources({"train": 4})
    for rank, share in [(0, node_share(found, 3, 0)), (2, found)]:  # node 2's part was made for other clips
        part_folder(tmp_path, rank).mkdir(parents=True)
        (part_folder(tmp_path, rank) / DONE).write_text(json.dumps({"share": share_digest(share, 3)}))
    with pytest.raises(
        TalkfaceError, match=r"node\(s\) 1, 2 of 3 have not finished their part of .* --node-rank 1, 2 "
    ) as error:
        wait_for_parts(tmp_path, found, 3, timeout=0.05)
    assert "\n" not in str(error.value)


def read_all(folder: Path) -> list[dict]:
    """Every sample of a litdata dataset, in stream order (no shuffle)."""
    return list(StreamingDataset(str(folder), shuffle=False))


def prepare_command(src: Path, out: Path, *extra: str) -> list[str]:
    base = [sys.executable, "-m", "talkface.cli", "prepare", "--src", str(src), "--out", str(out)]
    return [*base, "--workers", "1", "--no-progress", *extra]


@pytest.mark.slow
def test_two_nodes_prepare_the_same_dataset_as_one_sample_for_sample(tmp_path):
    source = lrw_tree(
        tmp_path / "raw",
        {"ABOUT": {"train": 2, "val": 1, "test": 1}, "BLACK": {"train": 1, "val": 1}},
        frames=29,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("SLURM_NNODES", "GROUP_WORLD_SIZE", "NNODES", "DATA_OPTIMIZER_NUM_NODES"):
        env.pop(name, None)  # the test's own launcher must not decide the node count
    single = tmp_path / "single"
    subprocess.run(prepare_command(source, single), check=True, capture_output=True, env=env, timeout=300)

    nodes = tmp_path / "nodes"
    node = [prepare_command(source, nodes, "--num-nodes", "2", "--node-rank", str(r)) for r in (0, 1)]
    # Node 0 alone: prepares its share, then stops naming the node whose part is missing.
    alone = subprocess.run(node[0] + ["--node-timeout", "1"], capture_output=True, text=True, env=env, timeout=300)
    assert alone.returncode == 2
    last_line = alone.stderr.strip().splitlines()[-1]
    assert last_line.startswith("talkface prepare: error: node(s) 1 of 2 have not finished their part of")
    assert not (nodes / "meta.json").exists()

    # Both nodes at once, as two machines would: node 0 resumes (its clips are done) and merges.
    running = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True) for c in node]
    results = [p.communicate(timeout=300) for p in running]
    assert [p.returncode for p in running] == [0, 0], [err[-2000:] for _, err in results]
    assert "preparing 0 of 2 lrw clips (2 already done)" in results[0][1]
    assert "node 0 merges" in results[1][1]

    compared = 0
    for split in ("train", "val", "test"):
        for part in ("light", "full"):
            expected, got = read_all(single / split / part), read_all(nodes / split / part)
            compared += len(got)
            assert [s["id"] for s in got] == [s["id"] for s in expected], (split, part)
            for want, have in zip(expected, got, strict=True):
                assert want.keys() == have.keys()
                for field in want:
                    assert np.array_equal(np.asarray(want[field]), np.asarray(have[field])), (split, part, field)
        # One dataset: a single index naming both nodes' chunks, no per-node index left over.
        index = json.loads((nodes / split / "full" / "index.json").read_text())
        names = [c["filename"] for c in index["chunks"]]
        assert names == sorted(names)  # chunk-<node>-<i>.bin, node 0's first
        expected_nodes = {"1"} if split == "test" else {"0", "1"}  # node 0's share of the one test clip is empty
        assert {name.split("-")[1] for name in names} == expected_nodes
        assert sorted(p.name for p in (nodes / split / "full").iterdir() if "index" in p.name) == ["index.json"]

    assert compared == 2 * (3 + 2 + 1)
    meta_single = json.loads((single / "meta.json").read_text())
    meta_nodes = json.loads((nodes / "meta.json").read_text())
    pca_single, pca_nodes = meta_single.pop("pca"), meta_nodes.pop("pca")
    assert meta_nodes == meta_single
    assert pca_nodes["frames"] == pca_single["frames"]
    for key in ("mean", "components", "explained_variance_ratio"):
        assert np.allclose(pca_nodes[key], pca_single[key], atol=1e-6)  # sums added in another order
    report = json.loads((nodes / "report.json").read_text())
    assert report["samples"] == json.loads((single / "report.json").read_text())["samples"]
    assert report["nodes"] == 2 and not (nodes / ".nodes").exists()


def test_a_node_cleans_up_and_retries_only_its_own_clips(tmp_path):
    from talkface.prepare.work_store import WorkStore

    store = WorkStore(tmp_path)
    for source_id in ("W/train/W_00000", "W/train/W_00001"):
        store.save_skip(source_id, "no face")
        (tmp_path / "W" / "train" / f".partial-123-{source_id.rsplit('/')[-1]}.npz").write_bytes(b"")
    mine = {"W/train/W_00000"}
    store.remove_partials(mine)
    assert store.forget_skips(mine) == 1
    left = sorted(p.name for p in (tmp_path / "W" / "train").iterdir())
    assert left == [".partial-123-W_00001.npz", "W_00001.skip.json"]  # another node's, untouched
