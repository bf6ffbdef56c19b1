"""`talkface demo --quick`: the whole framework from nothing, as a new user runs it."""

from __future__ import annotations

import pytest

from talkface.media import read_video
from tests.test_training_cli import run_cli


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_and_leaves_a_playable_video(tmp_path):
    out = tmp_path / "demo"
    result = run_cli(["demo", "--quick", "--out", str(out)], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for step in range(1, 8):
        assert f"[{step}/7]" in result.stdout
    assert "mouth LMD" in result.stdout and "mouth PSNR" in result.stdout
    clip = read_video(out / "talking.mp4")
    assert len(clip.frames) > 25 and clip.frames.shape[1:] == (512, 512, 3)
    assert abs(len(clip.audio) / 16000 - len(clip.frames) / 25) <= 1 / 25
    assert (out / "demo_metrics.json").is_file()
