"""`talkface benchmark`: runs end to end (tiny sizes) and checks every target against its figure."""

from __future__ import annotations

import json

import pytest

from talkface.benchmark.report import format_report, targets
from tests.helpers.cli import run_cli


def results(
    prepare_fps: float, decode_fps: float, loader: float, step: float, gen_fps: float, rss: tuple[float, float]
) -> dict:
    def run(fps, peak):
        return {
            "frames": 250,
            "frames_per_second": fps,
            "realtime_factor": 25 / fps,  # noqa: E731
            "first_frame_seconds": 0.4,
            "peak_rss_mib": peak,
        }

    return {
        "machine": {"cpu": "test CPU", "cores": 2, "gpu": None, "versions": {"torch": "2.11"}},
        "preparation": {
            "decode_only": {"clips": 10, "frames": 290, "seconds": 1, "frames_per_second": decode_fps},
            "talkface_prepare": {"clips": 10, "frames": 290, "seconds": 1, "frames_per_second": prepare_fps},
            "naive_per_frame_detection": {"clips": 2, "frames": 58, "seconds": 1, "frames_per_second": 60.0},
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
    good = {row["what"]: row["met"] for row in targets(results(350, 900, 400, 100, 30, (1000, 1100)))}
    assert all(good.values()) and len(good) == 5
    bad = {row["what"]: row["met"] for row in targets(results(250, 900, 200, 100, 20, (1000, 1200)))}
    assert not any(bad.values())


def test_report_prints_every_table_and_marks_misses():
    text = format_report(results(250, 900, 400, 100, 30, (1000, 1100)))
    for heading in ("| preparation |", "| training |", "| generation (audio file → mp4) |", "| target |"):
        assert heading in text
    assert "| NO |" in text and "test CPU" in text


@pytest.mark.slow
def test_quick_benchmark_runs_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    result = run_cli(["benchmark", "--quick", "--out", str(out), "--workdir", str(tmp_path / "work")], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["machine"]["cores"] >= 1 and data["machine"]["versions"]["torch"]
    assert data["preparation"]["talkface_prepare"]["frames"] == data["preparation"]["decode_only"]["frames"]
    assert set(data["training"]) == {"stage 1 (landmarks)", "stage 2 (face generator)"}
    runs = data["generation"]["128px"]
    assert all(run["frames"] > 0 and run["peak_rss_mib"] > 0 for run in runs.values())
    assert "| target |" in result.stdout
