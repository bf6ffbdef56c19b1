"""`talkface fit | validate | test | predict` through the Lightning CLI, and every config in configs/."""

from __future__ import annotations

import pytest
import torch

from talkface.cli import main
from tests.helpers.cli import cpu_overrides, data_overrides, run_cli, small_model
from tests.helpers.real_data import REPO

RECIPES = sorted(
    str(p.relative_to(REPO))
    for p in (REPO / "configs").glob("*/*.yaml")
    if p.parent.name in ("landmark", "generator", "sync")
)
TRAINERS = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs" / "trainer").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_runs_fast_dev_run_on_cpu(recipe, tiny_prepared, tmp_path):
    result = run_cli(
        [
            "fit",
            "-c",
            recipe,
            "--trainer.fast_dev_run",
            "1",
            *cpu_overrides(),
            *small_model(recipe),
            *data_overrides(tiny_prepared, tmp_path),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_trainer_config_composes_with_a_recipe(trainer, tiny_prepared, tmp_path):
    recipe = "configs/landmark/sample.yaml"
    result = run_cli(
        [
            "fit",
            "-c",
            recipe,
            "-c",
            trainer,
            "--trainer.fast_dev_run",
            "1",
            *cpu_overrides(),
            *small_model(recipe),
            *data_overrides(tiny_prepared, tmp_path),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_the_wandb_logger_config_parses(tmp_path):
    result = run_cli(["fit", "-c", "configs/landmark/sample.yaml", "-c", "configs/logger/wandb.yaml", "--print_config"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TalkfaceWandbLogger" in result.stdout


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--model.init_args.no_such_option", "1"], "no_such_option"),
        (["--data.batch_size", "many"], "batch_size"),
        (["--trainer.devices", "2", "--trainer.strategy", "ddp", "--data.batch_size", "3"], "does not divide"),
        (["--model.init_args.losses", "{bad: {class_path: no_such_loss}}"], "no_such_loss"),
    ],
)
def test_misconfiguration_is_one_line_and_exit_2(extra, expected, tiny_prepared, tmp_path, capsys):
    code = main(
        [
            "fit",
            "-c",
            "configs/landmark/sample.yaml",
            *data_overrides(tiny_prepared, tmp_path),
            "--trainer.max_epochs",
            "1",
            *extra,
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and error, error
    assert expected in error[-1] and error[-1].startswith("talkface fit: error:")


def test_missing_data_path_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(
        [
            "fit",
            "-c",
            "configs/landmark/sample.yaml",
            "--data.data_dir",
            str(tmp_path / "nowhere"),
            "--data.raw_dir",
            "null",
            "--data.sample",
            "null",
            "--trainer.default_root_dir",
            str(tmp_path),
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "not a prepared dataset" in error[-1]


def test_checkpoint_rebuilds_its_own_model_losses_included(tiny_prepared, tmp_path):
    from lightning_modules import LandmarkModule

    losses = "{reconstruction: {class_path: landmark_reconstruction}, sync: {class_path: audio_landmark_sync, init_args: {weight: 0.5}}}"
    code = main(
        [
            "fit",
            "-c",
            "configs/landmark/sample.yaml",
            *data_overrides(tiny_prepared, tmp_path),
            *small_model("landmark"),
            "--trainer.max_epochs",
            "1",
            "--trainer.check_val_every_n_epoch",
            "1",
            "--model.init_args.losses",
            losses,
        ]
    )
    assert code == 0
    checkpoint = next(tmp_path.rglob("last.ckpt"))
    stored = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert "talkface_config" in stored and "audio_landmark_sync" in stored["talkface_config"]
    model = LandmarkModule.load_from_checkpoint(checkpoint)
    assert set(model.losses.terms) == {"reconstruction", "sync"} and model.losses.terms["sync"].weight == 0.5
    assert model.hparams.num_words == 4  # linked from the data, not written in the config
    assert (checkpoint.parents[1] / "config.yaml").exists()


@pytest.mark.slow
def test_pca_output_trains_on_the_prepared_basis_and_keeps_it_in_the_checkpoint(tiny_prepared, tmp_path):
    """`output: pca` used to keep an all-zero basis (every prediction = the identity face)."""
    import json

    from lightning_modules import LandmarkModule

    code = main(
        [
            "fit",
            "-c",
            "landmark/sample",
            *data_overrides(tiny_prepared, tmp_path),
            *small_model("landmark"),
            "--model.init_args.output",
            "pca",
            "--trainer.max_epochs",
            "1",
        ]
    )
    assert code == 0
    checkpoint = next(tmp_path.rglob("last.ckpt"))
    basis = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]["generator.pca_components"]
    expected = json.loads((tiny_prepared / "meta.json").read_text())["pca"]["components"]
    assert torch.allclose(basis, torch.tensor(expected, dtype=basis.dtype))
    model = LandmarkModule.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()
    windows, identity = torch.randn(1, 5, 28, model.hparams.feature_dim), torch.rand(1, 68, 2)
    with torch.no_grad():
        moved = model(windows, identity) - identity[:, None]
    assert moved.abs().max() > 1e-6  # the mouth can move


def test_pca_output_without_a_basis_in_the_data_is_one_line(tiny_prepared, tmp_path, capsys):
    code = main(
        [
            "fit",
            "-c",
            "landmark/sample",
            *data_overrides(tiny_prepared, tmp_path),
            *small_model("landmark"),
            "--model.init_args.output",
            "pca",
            "--model.init_args.pca_components",
            "500",
            "--trainer.max_epochs",
            "1",
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and error[-1].endswith(
        "output: pca needs 500 principal components of the training landmarks, and the prepared data has 20; "
        "lower pca_components or use output: displacement"
    )
