"""Shared fixtures: where the real media lives, and a scratch dir per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The real media set sits beside the repository (../shared/data/real); TALKFACE_REAL_DATA overrides.
REAL_DATA = Path(os.environ.get("TALKFACE_REAL_DATA", REPO.parent / "shared" / "data" / "real"))
LRW_WORDS = REAL_DATA.parent / "lrw_words.txt"


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real media not present at {REAL_DATA} (a fresh clone has none; CI has it)")
    return REAL_DATA


def real_files(kind: str) -> list[Path]:
    """Files of `videos`, `faces` or `audio`, for parametrising; empty when absent."""
    folder = REAL_DATA / kind
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".md") if folder.is_dir() else []


def needs_real_data():
    return pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real media not present at {REAL_DATA}")


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
    from tests.test_training_cli import cpu_overrides, data_overrides, run_cli, small_model

    checkpoints = {}
    for stage, recipe, epochs in [("landmark", "configs/landmark/sample.yaml", 20), ("generator", "configs/generator/sample.yaml", 4)]:
        root = tmp_path_factory.mktemp(stage)
        result = run_cli(["fit", "-c", recipe, *cpu_overrides(), *small_model(recipe), *data_overrides(tiny_prepared, root),
                          "--trainer.max_epochs", str(epochs), "--trainer.check_val_every_n_epoch", str(epochs)],
                         env={"OMP_NUM_THREADS": "1"})  # OpenMP's spinning threads slow tiny models ~10x on busy cores
        assert result.returncode == 0, result.stderr[-3000:]
        checkpoints[stage] = next(root.rglob("last.ckpt"))
    return checkpoints
