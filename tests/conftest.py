"""Shared fixtures: the real media, a tiny prepared sample, small trained checkpoints.

Plain helpers (paths, media writers, CLI runners) live in tests/helpers/; import them from there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.real_data import REAL_DATA


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real media not present at {REAL_DATA} (a fresh clone has none; CI has it)")
    return REAL_DATA


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """A small built-in sample (4 words), prepared: the data most training tests run on."""
    from talkface.prepare import PrepareSettings, prepare_dataset
    from talkface.sample import build_sample

    raw = tmp_path_factory.mktemp("tiny_sample")
    build_sample(raw, num_words=4, splits={"train": 4, "val": 2, "test": 2}, seed=0, workers=2, progress=False)
    out = tmp_path_factory.mktemp("tiny_prepared")
    prepare_dataset(PrepareSettings(src=raw, out=out, workers=2, progress=False))
    return out


@pytest.fixture(scope="session")
def small_checkpoints(tiny_prepared, tmp_path_factory) -> dict[str, Path]:
    """Small stage-1 and stage-2 models really trained on `tiny_prepared` (20 and 4 epochs, about a
    minute): enough for generation to keep a face and for evaluation to fill every table."""
    from tests.helpers.cli import cpu_overrides, data_overrides, run_cli, small_model

    checkpoints = {}
    for stage, recipe, epochs in [
        ("landmark", "configs/landmark/sample.yaml", 20),
        ("generator", "configs/generator/sample.yaml", 4),
    ]:
        root = tmp_path_factory.mktemp(stage)
        result = run_cli(
            [
                "fit",
                "-c",
                recipe,
                *cpu_overrides(),
                *small_model(recipe),
                *data_overrides(tiny_prepared, root),
                "--trainer.max_epochs",
                str(epochs),
                "--trainer.check_val_every_n_epoch",
                str(epochs),
            ],
            env={"OMP_NUM_THREADS": "1"},
        )  # OpenMP's spinning threads slow tiny models ~10x on busy cores
        assert result.returncode == 0, result.stderr[-3000:]
        checkpoints[stage] = next(root.rglob("last.ckpt"))
    return checkpoints
