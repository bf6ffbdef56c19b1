"""W&B offline runs of each stage log validation videos that carry the clip's audio."""

from __future__ import annotations

import av
import pytest

from tests.helpers.cli import data_overrides, run_cli, small_model


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["configs/landmark/sample.yaml", "configs/generator/sample.yaml"])
def test_offline_wandb_run_holds_videos_with_audio(recipe, tiny_prepared, tmp_path):
    result = run_cli(
        [
            "fit",
            "-c",
            recipe,
            "-c",
            "configs/logger/wandb.yaml",
            *small_model(recipe),
            *data_overrides(tiny_prepared, tmp_path),
            "--trainer.max_epochs",
            "1",
            "--trainer.check_val_every_n_epoch",
            "1",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
        ],
        env={"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list(tmp_path.rglob("offline-run-*"))
    assert len(runs) == 1
    videos = sorted(runs[0].rglob("files/media/videos/**/*.mp4"))
    assert videos, list(runs[0].rglob("*"))
    for video in videos:
        with av.open(str(video)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        with av.open(str(video)) as container:
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(audio=0))
            rate = stream.rate
        assert frames == 29
        assert abs(samples / rate - frames / 25) <= 1 / 25 + 1024 / rate  # AAC decodes whole codec frames
