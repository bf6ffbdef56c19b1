"""`talkface benchmark`: runs end to end (tiny sizes) and checks every target against its figure."""

from __future__ import annotations

import json

import pytest

from talkface.benchmark.report import format_report, targets
from tests.helpers.cli import run_cli


def results(
    prepare_fps: float,
    decode_fps: float,
    loader: float,
    step: float,
    gen_fps: float,
    rss: tuple[float, float],
    after_load: float = 0.2,
) -> dict:
    def run(fps, peak):
        return {
            "frames": 250,
            "frames_per_second": fps,
            "realtime_factor": 25 / fps,  # noqa: E731
            "first_frame_seconds": 1.2,
            "peak_rss_mib": peak,
            "load_seconds": 1.0,
            "first_frame_after_load_seconds": after_load,
        }

    return {
        "machine": {"cpu": "test CPU", "cores": 2, "gpu": None, "versions": {"torch": "2.11"}},
        "preparation": {
            "decode_only": {"clips": 10, "frames": 290, "seconds": 1, "frames_per_second": decode_fps},
            "talkface_prepare": {"clips": 10, "frames": 290, "seconds": 1, "frames_per_second": prepare_fps},
            "naive_per_frame_detection": {"clips": 2, "frames": 58, "seconds": 1, "frames_per_second": 60.0},
            "profile_one_process": {
                "clips": 10,
                "frames": 290,
                "seconds": 2.0,
                "frames_per_second": 145.0,
                "stages": {
                    "decode": {"seconds": 0.5, "ms_per_frame": 1.724, "share": 0.25},
                    "landmarks": {"seconds": 1.5, "ms_per_frame": 5.172, "share": 0.75},
                },
            },
            "landmark_fit_floor": {
                "clips": 10,
                "frames": 290,
                "decode_ms_per_frame": 0.4,
                "fit_ms_per_frame": 0.8,
                "best_ratio": 0.333,
            },
        },
        "training": {
            "stage 1": {
                "loader": {"samples_per_second": loader},
                "train_step": {
                    "batch_size": 16,
                    "accelerator": "cpu",
                    "precision": "32-true",
                    "samples_per_second": step,
                },
                "loader_over_step": round(loader / step, 2),
            }
        },
        "generation": {"128px": {"10s": run(gen_fps, rss[0]), "120s": run(gen_fps, rss[1])}},
    }


def test_targets_are_met_or_missed_by_the_numbers():
    good = {row["what"]: row["met"] for row in targets(results(350, 900, 400, 100, 45, (1000, 1100)))}
    assert all(good.values()) and len(good) == 6
    bad = {row["what"]: row["met"] for row in targets(results(250, 900, 200, 100, 39, (1000, 1200), 0.35))}
    assert not any(bad.values()) and len(bad) == 6


def test_results_from_before_the_first_frame_figure_still_report():
    """Earlier JSON files (no loading / first-frame-after-loading figures, no profile) still print."""
    old = results(350, 900, 400, 100, 45, (1000, 1100))
    del old["preparation"]["profile_one_process"]
    for run in old["generation"]["128px"].values():
        del run["load_seconds"], run["first_frame_after_load_seconds"]
    assert len(targets(old)) == 5
    assert "| – | – |" in format_report(old)


def test_generation_rows_say_what_stage_2_ran_in():
    """A run records its precision; one from before that was recorded was float32."""
    data = results(350, 900, 400, 100, 45, (1000, 1100))
    data["generation"]["128px"]["10s"]["precision"] = "bf16"
    rows = [line for line in format_report(data).splitlines() if line.startswith("| 128px crop")]
    assert rows[0].endswith("| bf16 |") and rows[1].endswith("| fp32 |")


def test_a_bf16_mixed_training_step_gets_its_own_row_and_target():
    """On a CPU with native bf16 the benchmark also times `--trainer.precision bf16-mixed`."""
    data = results(350, 900, 400, 100, 45, (1000, 1100))
    stage = data["training"]["stage 1"]
    stage["train_step_bf16_mixed"] = {**stage["train_step"], "precision": "bf16-mixed", "samples_per_second": 200}
    stage["loader_over_step_bf16_mixed"] = 2.0
    assert "| stage 1, batch 16, cpu bf16-mixed | 400 | 200 | 2.0 |" in format_report(data)
    met = {row["what"]: row["met"] for row in targets(data)}
    assert met["stage 1: loader / training step"] and not met["stage 1: loader / training step, cpu bf16-mixed"]


def test_report_prints_every_table_and_marks_misses():
    text = format_report(results(250, 900, 400, 100, 30, (1000, 1100)))
    for heading in ("| preparation |", "| training |", "| generation (audio file → mp4) |", "| target |"):
        assert heading in text
    assert "| landmarks | 1.5 | 5.172 | 75 % |" in text  # where a frame's preparation time goes
    assert "reaches at most 0.333 of pure decoding" in text  # the landmark model's own floor
    assert "| NO |" in text and "test CPU" in text


@pytest.mark.slow
def test_quick_benchmark_runs_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    result = run_cli(["benchmark", "--quick", "--out", str(out), "--workdir", str(tmp_path / "work")], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["machine"]["cores"] >= 1 and data["machine"]["versions"]["torch"]
    assert data["preparation"]["talkface_prepare"]["frames"] == data["preparation"]["decode_only"]["frames"]
    profile = data["preparation"]["profile_one_process"]
    assert profile["frames"] == data["preparation"]["decode_only"]["frames"]
    assert {"decode", "landmarks", "alignment", "crop encoding", "features"} <= set(profile["stages"])
    assert abs(sum(row["seconds"] for row in profile["stages"].values()) - profile["seconds"]) < 0.05
    floor = data["preparation"]["landmark_fit_floor"]
    assert floor["frames"] == profile["frames"] and floor["fit_ms_per_frame"] > 0
    assert 0 < floor["best_ratio"] < 1
    ratio = floor["decode_ms_per_frame"] / (floor["decode_ms_per_frame"] + floor["fit_ms_per_frame"])
    assert abs(floor["best_ratio"] - ratio) < 0.002  # both from the same times (the ms figures are rounded)
    assert set(data["training"]) == {"stage 1 (landmarks)", "stage 2 (face generator)"}
    runs = data["generation"]["128px"]
    assert all(run["frames"] > 0 and run["peak_rss_mib"] > 0 for run in runs.values())
    assert all(0 < run["first_frame_after_load_seconds"] < run["first_frame_seconds"] for run in runs.values())
    assert all(run["precision"] in ("fp32", "bf16") for run in runs.values())
    assert "| target |" in result.stdout
