"""`talkface evaluate`: tables with honest gaps, one-line errors, and a real run on small trained checkpoints."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_modules import LandmarkModule
from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.evaluation import Row, parse_checkpoint
from talkface.evaluation.report import (
    END_TO_END_COLUMNS,
    FRAME_COLUMNS,
    STAGE1_COLUMNS,
    markdown_table,
    write_json,
)
from talkface.evaluation.runner import resolve_checkpoint
from talkface.generation.checkpoints import save_untrained
from tests.helpers.cli import run_cli
from tests.helpers.real_data import REAL_DATA, REPO, needs_real_data


@pytest.fixture(scope="module")
def untrained_landmark(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("untrained") / "run" / "lightning_logs" / "version_0" / "checkpoints"
    return save_untrained(
        LandmarkModule(num_words=2, hidden=16, audio_dim=16, layers=1), folder / "best-epoch=3.ckpt", 128, ["A", "B"]
    )


# ---- tables
def rows() -> list[Row]:
    return [
        Row("held still", {"lmd_mouth": 1.9, "lmd_face": 1.5, "velocity_error": 0.8}, baseline=True),
        Row(
            "no labels",
            {
                "lmd_mouth": 0.9,
                "lmd_face": 0.8,
                "velocity_error": 0.5,
                "word_acc_predicted": float("nan"),
                "word_acc_true": float("nan"),
            },
        ),
        Row(
            "labelled",
            {"lmd_mouth": 1.0, "lmd_face": 0.7, "velocity_error": 0.5, "word_acc_predicted": 0.5, "word_acc_true": 1.0},
        ),
    ]


def cells(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_missing_values_are_a_dash_never_zero_and_the_best_is_bold():
    table = markdown_table(rows(), STAGE1_COLUMNS)
    assert cells(table, "held still") == ["1.900", "1.500", "0.800", "–", "–"]
    assert cells(table, "no labels") == ["**0.900**", "0.800", "**0.500**", "–", "–"]
    # one word accuracy only: nothing to rank; the true-landmark ceiling is never ranked
    assert cells(table, "labelled") == ["1.000", "**0.700**", "**0.500**", "50.0 %", "100.0 %"]
    assert table.splitlines()[1] == "|---" * 6 + "|"


def test_higher_is_better_columns_bold_the_largest_and_inf_is_written():
    table = markdown_table(
        [Row("a", {"psnr": 30.0, "ssim": 0.9}), Row("b", {"psnr": math.inf, "ssim": 0.8})], FRAME_COLUMNS
    )
    assert cells(table, "a") == ["–", "–", "–", "30.00", "**0.900**"]
    assert cells(table, "b") == ["–", "–", "–", "**inf**", "0.800"]


def test_json_rows_have_null_for_missing_values(tmp_path):
    write_json(tmp_path / "e.json", {"rows": [row.to_json() for row in rows()]})  # allow_nan=False: would raise on NaN
    stored = json.loads((tmp_path / "e.json").read_text())["rows"]
    assert stored[1]["metrics"]["word_acc_predicted"] is None and stored[2]["metrics"]["word_acc_predicted"] == 0.5


def test_trivially_perfect_baseline_values_have_a_dagger_and_are_never_ranked(tmp_path):
    still = Row(
        "copy",
        {"psnr": 20.0, "mouth_open_corr": 0.0, "upper_face_psnr": 100.0, "sharpness_ratio": 1.0},
        baseline=True,
        counts={"mouth_open_corr": {"clips": 2, "still_clips": 2, "skipped_clips": 1}},
        trivial=("upper_face_psnr", "sharpness_ratio"),
    )
    model = Row("model", {"psnr": 25.0, "mouth_open_corr": 0.4, "upper_face_psnr": 31.0, "sharpness_ratio": 0.9})
    other = Row("other", {"psnr": 24.0, "mouth_open_corr": float("nan"), "upper_face_psnr": 29.0})
    table = markdown_table([still, model, other], END_TO_END_COLUMNS)
    assert table.splitlines()[0].endswith(
        "| mouth-opening corr. | upper-face PSNR vs photo (dB) | sharpness ratio (face, vs photo) | face found |"
    )
    psnr = [c.key for c in END_TO_END_COLUMNS].index("psnr")
    assert [cells(table, name)[psnr] for name in ("copy", "model", "other")] == ["20.00", "**25.00**", "24.00"]
    assert cells(table, "copy")[-4:] == ["0.000", "100.00 †", "1.000 †", "–"]
    assert cells(table, "model")[-4:] == ["**0.400**", "**31.00**", "0.900", "–"]  # the ratio is not ranked
    assert cells(table, "other")[-4:] == ["–", "29.00", "–", "–"]
    write_json(tmp_path / "e.json", {"rows": [still.to_json(), other.to_json()]})
    stored = json.loads((tmp_path / "e.json").read_text())["rows"]
    assert stored[0]["trivial"] == ["upper_face_psnr", "sharpness_ratio"] and stored[1]["trivial"] == []
    assert stored[0]["counts"]["mouth_open_corr"]["skipped_clips"] == 1 and stored[1]["counts"] == {}
    assert stored[1]["metrics"]["mouth_open_corr"] is None


# ---- the end-to-end module on a made-up batch (untrained generator, landmarks given)
def speaking_landmarks(openings: list[float]) -> torch.Tensor:
    """(T, 68, 2) normalised landmarks of one face whose inner lips part by `openings` of the mouth width."""
    face = 0.3 + 0.4 * torch.rand(68, 2, generator=torch.Generator().manual_seed(3))
    clip = face.repeat(len(openings), 1, 1)
    clip[:, 48], clip[:, 54] = torch.tensor([0.4, 0.65]), torch.tensor([0.6, 0.65])
    for t, opening in enumerate(openings):
        for i, dx in enumerate((-0.05, 0.0, 0.05)):
            clip[t, 61 + i] = torch.tensor([0.5 + dx, 0.65 - opening * 0.1])
            clip[t, 67 - i] = torch.tensor([0.5 + dx, 0.65 + opening * 0.1])
    return clip


class GivenLandmarks(torch.nn.Module):
    """Stands in for stage 1: 'predicts' the clip's true landmarks."""

    def __init__(self, landmarks: torch.Tensor) -> None:
        super().__init__()
        self.landmarks = landmarks

    def forward(self, audio_windows, identity_landmarks):
        return self.landmarks


def test_end_to_end_scores_the_real_face_metrics_and_their_still_photo_baseline():
    from lightning_modules import FaceGenModule
    from talkface.evaluation.end_to_end import EndToEnd
    from talkface.metrics.redetected_distance import RedetectedLandmarkDistance

    torch.manual_seed(0)
    clips, length, size = 2, 7, 64
    truth = torch.stack([speaking_landmarks([0.1, 0.3, 0.5, 0.2, 0.4, 0.1, 0.6]), speaking_landmarks([0.2] * 7)])
    batch = {
        "audio_windows": torch.zeros(clips, length, 1, 1),
        "identity_landmarks": truth[:, 0],
        "landmarks": truth,
        "frames": torch.randint(0, 256, (clips, length, 3, size, size), dtype=torch.uint8),
        "reference_landmarks": truth[:, 0],
    }
    batch["reference_frame"] = batch["frames"][:, 0]
    chain = EndToEnd(GivenLandmarks(truth), FaceGenModule(image_size=size, base_channels=8).eval(), frame_stride=2)
    with torch.no_grad():
        chain.test_step(batch, 0)
    chain.on_test_epoch_end()
    own = {k.removeprefix("test/"): v.item() for k, v in chain.metrics.compute().items()}
    still = {k.removeprefix("test/copy_reference/"): v.item() for k, v in chain.baseline_metrics.compute().items()}
    assert set(own) == {"psnr", "ssim", "mouth_psnr", "mouth_ssim", "lmd_mouth"} | set(still)
    assert set(still) == {"mouth_open_corr", "upper_face_psnr", "sharpness_ratio"}
    frames = clips * len(range(1, length, 2))
    # The second clip's real mouth never moves: skipped. The photo held still: a still mouth, 0.
    assert chain.baseline_counts["mouth_open_corr"] == {"clips": 1, "still_clips": 1, "skipped_clips": 1}
    assert chain.counts["mouth_open_corr"]["clips"] + chain.counts["mouth_open_corr"]["skipped_clips"] == clips
    assert still["mouth_open_corr"] == 0 and still["upper_face_psnr"] == pytest.approx(100.0)
    assert still["sharpness_ratio"] == 1.0
    assert chain.counts["upper_face_psnr"] == {"frames": frames} == chain.baseline_counts["upper_face_psnr"]
    assert chain.counts["sharpness_ratio"] == {"frames": frames, "skipped_frames": 0}
    assert chain.counts["lmd_mouth"]["frames"] == frames
    assert 0 < own["upper_face_psnr"] < 100 and own["sharpness_ratio"] > 0
    assert math.isnan(own["mouth_open_corr"]) or -1 <= own["mouth_open_corr"] <= 1

    # The mouth LMD fed with the one shared detection equals stage 2's metric detecting by itself.
    fake = torch.rand(3, 3, size, size)
    reference = RedetectedLandmarkDistance("mouth")
    reference.update(fake, truth[0, :3])
    from talkface.evaluation.end_to_end import DetectedLandmarkDistance
    from talkface.metrics.redetected_distance import redetect

    shared = DetectedLandmarkDistance("mouth")
    shared.update(*redetect(fake, truth[0, :3]), truth[0, :3])
    assert shared.compute().item() == reference.compute().item()
    assert shared.undetected_fraction().item() == reference.undetected_fraction().item()


# ---- naming checkpoints
def test_a_checkpoint_file_with_equals_in_its_name_is_taken_whole(untrained_landmark):
    checkpoint = parse_checkpoint(str(untrained_landmark), "--landmark")
    assert checkpoint.path == untrained_landmark and checkpoint.name == "run (best-epoch=3)"
    named = parse_checkpoint(f"+ temporal residual={untrained_landmark}", "--landmark")
    assert named.name == "+ temporal residual" and named.path == untrained_landmark


@pytest.mark.parametrize(
    "value, message", [("=x.ckpt", "name before '=' is empty"), ("a=missing.ckpt", "no such checkpoint")]
)
def test_bad_checkpoint_names_are_user_errors(value, message):
    with pytest.raises(TalkfaceError, match=message):
        parse_checkpoint(value, "--landmark")


def test_a_run_folder_means_the_best_checkpoint_its_last_one_recorded(tmp_path):
    folder = tmp_path / "run" / "lightning_logs" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    best = folder / "best-epoch=7.ckpt"
    best.write_bytes(b"")
    torch.save(
        {
            "callbacks": {
                "ModelCheckpoint{'monitor': 'val/lmd_mouth'}": {
                    "monitor": "val/lmd_mouth",
                    "best_model_path": str(best),
                }
            }
        },
        folder / "last.ckpt",
    )
    assert resolve_checkpoint(tmp_path / "run", "--landmark") == best
    (tmp_path / "empty").mkdir()
    with pytest.raises(TalkfaceError, match="no last.ckpt"):
        resolve_checkpoint(tmp_path / "empty", "--landmark")


# ---- user errors: one line, exit 2
@pytest.fixture
def error_cases(tmp_path, untrained_landmark) -> dict[str, tuple[list[str], str]]:
    stage2 = tmp_path / "generator.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "lightning_modules.FaceGenModule"}}, stage2)
    (tmp_path / "notes.ckpt").write_text("not a checkpoint\n")
    data, lm = str(tmp_path), str(untrained_landmark)
    return {
        "nothing": (["--data", data], "nothing to evaluate"),
        "no data": (["--data", str(tmp_path / "nowhere"), "--landmark", lm], "not a prepared dataset"),
        "wrong stage": (["--data", data, "--landmark", str(stage2)], "is a stage-2 (face generator) checkpoint"),
        "not a checkpoint": (
            ["--data", data, "--generator", str(tmp_path / "notes.ckpt")],
            "not a readable PyTorch checkpoint",
        ),
        "missing": (["--data", data, "--generator", "g=missing.ckpt"], "no such checkpoint file"),
        "same name": (["--data", data, "--landmark", lm, "--landmark", lm], "two checkpoints are named"),
        "ablation dir": (["--data", data, "--ablation-dir", str(tmp_path / "nowhere")], "no such folder"),
        "stride": (["--data", data, "--landmark", lm, "--frame-stride", "0"], "--frame-stride must be at least 1"),
    }


@pytest.mark.parametrize(
    "case", ["nothing", "no data", "wrong stage", "not a checkpoint", "missing", "same name", "ablation dir", "stride"]
)
def test_user_errors_are_one_line_and_exit_2(case, error_cases, capsys):
    args, message = error_cases[case]
    assert main(["evaluate", *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talkface evaluate: error:") and message in lines[0], lines
    assert captured.out == ""


def test_a_user_error_from_a_real_process_has_no_traceback(error_cases):
    args, message = error_cases["wrong stage"]
    result = subprocess.run(
        [sys.executable, "-m", "talkface.cli", "evaluate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if message in line
    ]


# ---- end to end, on checkpoints trained in this session
# One thread: on a busy 2-core machine OpenMP's spinning threads make these tiny models ~10x slower.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_evaluate_tests_every_checkpoint_and_every_pair_on_the_same_clips(small_checkpoints, tiny_prepared, tmp_path):
    out = tmp_path / "report"
    # The same stage-1 checkpoint under two names: two rows that must agree to the last digit.
    result = run_cli(
        [
            "evaluate",
            "--data",
            str(tiny_prepared),
            "--landmark",
            f"first={small_checkpoints['landmark']}",
            "--landmark",
            f"again={small_checkpoints['landmark']}",
            "--generator",
            f"gen={small_checkpoints['generator']}",
            "--frame-stride",
            "8",
            "--batch-size",
            "4",
            "--out",
            str(out),
        ],
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "evaluation.json").read_text())
    tables = report["tables"]
    assert [r["name"] for r in tables["stage1"]] == ["identity landmarks held still (baseline)", "first", "again"]
    assert [r["name"] for r in tables["stage2"]] == ["copy the reference frame (baseline)", "gen"]
    assert [r["name"] for r in tables["end_to_end"]] == ["copy the reference frame (baseline)", "first", "again"]
    assert report["clips"] == 8 and report["frame_stride"] == 8  # 4 words x 2 test clips

    held, first, again = (r["metrics"] for r in tables["stage1"])
    assert first == again and tables["end_to_end"][1]["metrics"] == tables["end_to_end"][2]["metrics"]
    assert held["lmd_mouth"] > 0 and "word_acc_predicted" not in held
    assert 0 <= first["word_acc_predicted"] <= 1 and first["lmd_mouth"] > 0
    copy, gen = (r["metrics"] for r in tables["stage2"])
    still, chained = tables["end_to_end"][0], tables["end_to_end"][1]
    assert {k: still["metrics"][k] for k in copy} == copy  # stage 2's baseline row, the same frames
    frame_keys = {"psnr", "ssim", "mouth_psnr", "mouth_ssim", "lmd_mouth"}
    real_face = {"mouth_open_corr", "upper_face_psnr", "sharpness_ratio"}
    for metrics in (copy, gen, still["metrics"], chained["metrics"]):
        assert set(metrics) - {"face_found"} == (frame_keys if len(metrics) == 5 else frame_keys | real_face)
        assert all(math.isfinite(v) for v in metrics.values()) and 0 < metrics["ssim"] <= 1
    assert set(still["metrics"]) == frame_keys | real_face
    assert set(chained["metrics"]) == frame_keys | real_face | {"face_found"}  # the baseline is the photo

    # Real-face metrics: the photo held still scores 0 by the "still generated mouth" rule and is
    # trivially perfect against itself (the cap, a ratio of 1), which the row says.
    assert still["metrics"]["mouth_open_corr"] == 0
    assert still["metrics"]["upper_face_psnr"] == pytest.approx(100.0) and still["metrics"]["sharpness_ratio"] == 1
    assert still["trivial"] == ["upper_face_psnr", "sharpness_ratio"] and chained["trivial"] == []
    assert -1 <= chained["metrics"]["mouth_open_corr"] <= 1
    assert 0 < chained["metrics"]["upper_face_psnr"] < 100 and chained["metrics"]["sharpness_ratio"] > 0
    frames = chained["counts"]["lmd_mouth"]["frames"]  # every 8th frame of each of the 8 clips
    assert frames > 0 and frames % 8 == 0 and chained["counts"]["lmd_mouth"]["undetected"] <= frames
    found = 1 - chained["counts"]["lmd_mouth"]["undetected"] / frames
    assert chained["metrics"]["face_found"] == pytest.approx(found)
    for row in (still, chained):
        counts = row["counts"]
        corr = counts["mouth_open_corr"]
        assert corr["clips"] + corr["skipped_clips"] == 8 and corr["clips"] > 0, counts
        assert counts["upper_face_psnr"]["frames"] == counts["sharpness_ratio"]["frames"] == frames, counts
        assert counts["sharpness_ratio"]["skipped_frames"] == 0
    assert still["counts"]["mouth_open_corr"]["still_clips"] == still["counts"]["mouth_open_corr"]["clips"]
    assert "lmd_mouth" not in still["counts"]

    markdown = (out / "evaluation.md").read_text()
    # stage 2, end to end and the lip sync (measured end to end by the released sync expert)
    assert markdown.count("| copy the reference frame (baseline) |") == 3 and "every 8th frame" in markdown
    assert [r["name"] for r in tables["lip_sync"]] == [
        "real video (baseline)",
        "copy the reference frame (baseline)",
        "first",
        "again",
    ]
    assert tables["lip_sync"][2]["metrics"] == tables["lip_sync"][3]["metrics"]
    end_to_end = markdown.split("## End to end")[1]
    assert (
        "| mouth-opening corr. | upper-face PSNR vs photo (dB) | sharpness ratio (face, vs photo) | face found |"
        in (end_to_end)
    )
    baseline_cells = [cell.strip("*") for cell in cells(end_to_end, "copy the reference frame (baseline)")[-4:]]
    assert baseline_cells == ["0.000", "100.00 †", "1.000 †", "–"]  # 0 may be the best correlation of this tiny run
    assert all(cell not in ("–", "") for cell in cells(end_to_end, "first")[-4:])
    assert cells(end_to_end, "first")[-1].endswith("%")
    assert result.stdout.strip() == markdown.strip()
    progress = [line for line in result.stderr.splitlines() if line.startswith("talkface evaluate: [")]
    assert [line.split("]")[0] for line in progress] == [f"talkface evaluate: [{i}/5" for i in range(1, 6)]


@pytest.mark.slow
@needs_real_data()
def test_real_clips_without_word_labels_show_a_dash(small_checkpoints, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("grid_lbax4n.mpg", "lrs2_00001.mp4"):
        shutil.copy(REAL_DATA / "videos" / name, videos / name)
    prepared = tmp_path / "prepared"
    result = run_cli(
        [
            "prepare",
            "--src",
            str(videos),
            "--out",
            str(prepared),
            "--layout",
            "folder",
            "--split-ratios",
            "0,0,1",
            "--splits",
            "test",
            "--no-progress",
        ],
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    result = run_cli(
        [
            "evaluate",
            "--data",
            str(prepared),
            "--landmark",
            f"lm={small_checkpoints['landmark']}",
            "--out",
            str(tmp_path / "r"),
        ],
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "r" / "evaluation.json").read_text())
    assert report["clips"] == 2 + 4  # 75 and 120 frames: 2 and 4 windows of 29
    row = report["tables"]["stage1"][1]["metrics"]
    assert row["word_acc_predicted"] is None and row["word_acc_true"] is None and row["lmd_mouth"] > 0
    assert cells((tmp_path / "r" / "evaluation.md").read_text(), "lm")[3:] == ["–", "–"]
