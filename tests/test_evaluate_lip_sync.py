"""`talkface evaluate` measures the lip sync end to end (issue 14): LSE-D, LSE-C and the offset of
every generated clip, of the real video and of the photo held still, by a named sync expert."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_modules import FaceGenModule, LandmarkModule
from talkface.cli import main
from talkface.evaluation import Row, markdown_table
from talkface.evaluation.report import LIP_SYNC_COLUMNS
from talkface.generation.checkpoints import save_untrained
from talkface.metrics.lip_sync import clip_sync_scores
from talkface.networks.pixel_range import to_uint8, to_unit
from talkface.sync.experts import load_expert
from tests.helpers.cli import run_cli
from tests.test_evaluate import GivenLandmarks, cells, speaking_landmarks

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def expert():
    return load_expert()  # the released one


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("untrained_pair")
    torch.manual_seed(0)
    return {
        "landmark": save_untrained(
            LandmarkModule(num_words=4, hidden=16, audio_dim=16, layers=1), folder / "landmark.ckpt", 128, list("ABCD")
        ),
        "generator": save_untrained(FaceGenModule(base_channels=8), folder / "generator.ckpt", 128, list("ABCD")),
    }


def test_the_lip_sync_table_ranks_lower_distance_higher_confidence_and_fewer_offset_frames():
    rows = [
        Row("real video (baseline)", {"lse_d": 1.0, "lse_c": 0.25, "offset": 0.5, "in_sync": 0.9}, baseline=True),
        Row("still", {"lse_d": 1.2, "lse_c": 0.1, "offset": 12.0, "in_sync": 0.0}, baseline=True),
        Row("model", {"lse_d": 1.1, "lse_c": 0.3, "offset": 4.0, "in_sync": 0.5}),
    ]
    table = markdown_table(rows, LIP_SYNC_COLUMNS)
    assert table.splitlines()[0] == "| | LSE-D | LSE-C | AV offset, absolute (frames) | in sync (±1 frame) |"
    assert cells(table, "real video (baseline)") == ["**1.000**", "0.250", "**0.50**", "**90.0 %**"]
    assert cells(table, "model") == ["1.100", "**0.300**", "4.00", "50.0 %"]


def batch_of(clips: int, length: int, size: int) -> tuple[dict, torch.Tensor]:
    torch.manual_seed(0)
    truth = torch.stack([speaking_landmarks([0.1, 0.5, 0.2, 0.6, 0.1, 0.4, 0.3, 0.5, 0.2][:length])] * clips)
    speech = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (clips, length * 640)).astype(np.float32))
    batch = {
        "audio_windows": torch.zeros(clips, length, 1, 1),
        "identity_landmarks": truth[:, 0],
        "landmarks": truth,
        "frames": torch.randint(0, 256, (clips, length, 3, size, size), dtype=torch.uint8),
        "reference_landmarks": truth[:, 0],
        "audio": speech,
    }
    batch["reference_frame"] = batch["frames"][:, 0]
    return batch, truth


def test_end_to_end_scores_every_frame_of_the_generated_the_real_and_the_still_clip(expert):
    from talkface.evaluation.end_to_end import EndToEnd

    clips, length, size = 2, 9, 64  # 64 px crops: resized to the expert's 128 px
    batch, truth = batch_of(clips, length, size)
    generator = FaceGenModule(image_size=size, base_channels=8).eval()
    plain = EndToEnd(GivenLandmarks(truth), generator, frame_stride=2)
    chain = EndToEnd(GivenLandmarks(truth), generator, frame_stride=2, expert=expert)
    assert "audio" in chain.data_fields and "audio" not in plain.data_fields
    with torch.no_grad():
        plain.test_step(batch, 0)
        chain.test_step(batch, 0)
    chain.on_test_epoch_end()
    assert chain.sync_clips == clips
    # The other metrics are untouched by the lip-sync scoring.
    assert {k: v.item() for k, v in chain.metrics.compute().items()} == {
        k: v.item() for k, v in plain.metrics.compute().items()
    }

    def expected(videos: torch.Tensor) -> dict[str, float]:
        per_clip = []
        for clip, sound in zip(videos, batch["audio"], strict=True):
            resized = torch.nn.functional.interpolate(clip.float(), size=(128, 128), mode="bilinear")
            video, audio = expert.embed(resized.round().clamp(0, 255).to(torch.uint8), sound.numpy())
            per_clip.append(clip_sync_scores(video, audio))
        return {
            "lse_d": float(np.mean([s["lse_d"] for s in per_clip])),
            "lse_c": float(np.mean([s["lse_c"] for s in per_clip])),
            "offset": float(np.mean([s["offset"].abs() for s in per_clip])),
            "in_sync": float(np.mean([s["offset"].abs() <= 1 for s in per_clip])),
        }

    generated = torch.stack(
        [
            to_uint8(generator.render_sequence(to_unit(batch["reference_frame"][i]), truth[i, 0], truth[i]))
            for i in range(clips)
        ]
    )
    still = batch["reference_frame"][:, None].expand(clips, length, 3, size, size)
    for metrics, videos in (
        (chain.sync_metrics, generated),
        (chain.sync_real, batch["frames"]),
        (chain.sync_still, still),
    ):
        scores = {k.rsplit("/", 1)[1]: v.item() for k, v in metrics.compute().items()}
        assert scores == pytest.approx(expected(videos), abs=1e-5)
        assert all(math.isfinite(v) for v in scores.values()) and scores["lse_c"] >= 0


def evaluate(data: Path, untrained: dict, out: Path, *extra: str):
    result = run_cli(
        [
            "evaluate",
            "--data",
            str(data),
            "--landmark",
            f"lm={untrained['landmark']}",
            "--generator",
            f"gen={untrained['generator']}",
            "--frame-stride",
            "8",
            "--batch-size",
            "2",
            "--limit-batches",
            "1",
            "--out",
            str(out),
            *extra,
        ],
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "evaluation.json").read_text()), (out / "evaluation.md").read_text(), result


@pytest.mark.slow  # two evaluate runs on the built-in sample (about 1.5 min with its preparation)
def test_evaluate_reports_the_lip_sync_by_the_named_expert_and_leaves_the_rest_as_it_was(
    tiny_prepared, untrained, tmp_path
):
    report, markdown, result = evaluate(tiny_prepared, untrained, tmp_path / "with")
    expert = "talkface sync expert (sync_expert.safetensors)"
    assert report["sync_expert"] == expert
    rows = report["tables"]["lip_sync"]
    assert [r["name"] for r in rows] == ["real video (baseline)", "copy the reference frame (baseline)", "lm"]
    for row in rows:
        assert set(row["metrics"]) == {"lse_d", "lse_c", "offset", "in_sync"}
        assert all(math.isfinite(v) for v in row["metrics"].values())
        assert row["counts"] == {"lip_sync": {"clips": 2}}
    assert rows[2]["checkpoints"] == {"landmark": str(untrained["landmark"]), "generator": str(untrained["generator"])}
    section = markdown.split("## Lip sync, end to end")[1]
    assert f"Measured by **{expert}**" in section and "| real video (baseline) |" in section
    assert "LSE-D" in next(line for line in result.stderr.splitlines() if line.startswith("talkface evaluate: [3/3]"))

    # Without the lip sync: the very same other tables, and no lip-sync table.
    without, plain, _ = evaluate(tiny_prepared, untrained, tmp_path / "without", "--no-lip-sync")
    assert without["sync_expert"] is None and without["tables"]["lip_sync"] == []
    assert "## Lip sync" not in plain and without["captions"]["lip_sync"] == ""
    for key in ("stage1", "stage2", "end_to_end"):
        strip = [{k: v for k, v in row.items() if k != "seconds"} for row in without["tables"][key]]
        assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in report["tables"][key]], key
    assert plain.split("## Lip sync")[0].split("Wall time")[0] == markdown.split("## Lip sync")[0].split("Wall time")[0]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sync-expert", "missing.safetensors"], "--sync-expert missing.safetensors: no such file"),
        (["--syncnet", "missing.model"], "--syncnet missing.model: no such file"),
        (["--sync-expert", "a", "--syncnet", "b"], "give --sync-expert or --syncnet, not both"),
    ],
)
def test_a_wrong_sync_expert_is_a_one_line_error(extra, message, untrained, tmp_path, capsys):
    args = ["evaluate", "--data", str(tmp_path), "--landmark", str(untrained["landmark"]), *extra]
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_a_stage_checkpoint_given_as_the_sync_expert_is_named_by_the_option(untrained, tmp_path, capsys):
    args = ["evaluate", "--data", str(tmp_path), "--landmark", str(untrained["landmark"])]
    args += ["--generator", str(untrained["generator"]), "--sync-expert", str(untrained["generator"])]
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--sync-expert" in lines[0], lines


def test_the_official_syncnet_measures_through_the_same_path():
    from talkface.evaluation.end_to_end import EndToEnd
    from talkface.sync.experts import OfficialExpert
    from talkface.sync.official_syncnet import SyncNetV2

    torch.manual_seed(0)
    batch, truth = batch_of(1, 7, 64)
    official = OfficialExpert(SyncNetV2(), "SyncNet v2 (untrained)")
    chain = EndToEnd(GivenLandmarks(truth), FaceGenModule(image_size=64, base_channels=8).eval(), 2, official)
    assert chain.sync_network is official.network
    with torch.no_grad():
        chain.test_step(batch, 0)
    chain.on_test_epoch_end()
    assert chain.sync_clips == 1
    assert all(math.isfinite(v.item()) for v in chain.sync_real.compute().values())
