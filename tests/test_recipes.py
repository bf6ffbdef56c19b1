"""Packaged recipes found by name, `defaults:` composition, full loss terms, dotted loss overrides."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from talkface.errors import TalkfaceError
from talkface.recipes import find_recipe, load_composed, packaged_recipes, packaged_root
from talkface.training_args import rewrite_arguments

REPO = Path(__file__).resolve().parents[1]
LOSSES = "--model.init_args.losses"


def _config(argv: list[str], position: int = 2) -> dict:
    return yaml.safe_load(argv[position])


def test_the_packaged_recipes_are_the_repository_configs():
    assert packaged_root().resolve() == (REPO / "configs").resolve()  # editable install: one copy
    assert packaged_recipes() == [
        "generator/grid",
        "generator/lrw",
        "generator/real",
        "generator/sample",
        "landmark/lrw",
        "landmark/real",
        "landmark/sample",
        "sync/real",
    ]


@pytest.mark.parametrize("name", ["landmark/sample", "landmark/sample.yaml", "configs/landmark/sample.yaml"])
def test_a_recipe_is_found_by_name_or_path(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here: the packaged one is used
    assert find_recipe(name) == packaged_root() / "landmark" / "sample.yaml"


def test_a_file_path_wins_over_a_packaged_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "landmark").mkdir()
    (tmp_path / "landmark" / "sample").write_text("seed_everything: 7\n")
    assert load_composed("landmark/sample") == {"seed_everything": 7}


def test_an_unknown_recipe_lists_the_packaged_ones():
    with pytest.raises(
        TalkfaceError, match=r"landmark/nope: no such config file or packaged recipe \(packaged: generator/grid"
    ):
        find_recipe("landmark/nope")


@pytest.mark.parametrize("name", packaged_recipes())
def test_every_recipe_composes_callbacks_data_and_losses(name):
    config = load_composed(name)
    stage = not name.startswith("sync/")  # the sync expert: its own objective, no video samples
    assert "defaults" not in config
    assert len(config["trainer"]["callbacks"]) == (3 if stage else 2)
    assert config["data"]["data_dir"] and config["data"]["batch_size"] > 0
    assert list(config)[:4] == ["seed_everything", "trainer", "model", "data"]
    if stage:
        assert "reconstruction" in config["model"]["init_args"]["losses"]


def test_recipe_keys_go_on_top_of_the_pieces_they_compose():
    losses = load_composed("landmark/lrw")["model"]["init_args"]["losses"]
    assert list(losses) == ["reconstruction", "detector", "temporal", "semantic", "audio_word", "sync"]
    assert losses["temporal"] == {
        "class_path": "temporal_residual",
        "init_args": {"weight": 1.0, "second_order_weight": 0.5},
    }
    assert losses["semantic"]["init_args"] == {"weight": 0.01, "start_step": 2000}
    assert (
        load_composed("generator/sample")["model"]["init_args"]["losses"]["adversarial"]["init_args"]["start_step"]
        == 400
    )
    assert (
        "start_step" not in load_composed("generator/lrw")["model"]["init_args"]["losses"]["adversarial"]["init_args"]
    )


def test_defaults_resolve_beside_the_file_then_in_the_package(tmp_path):
    (tmp_path / "mine.yaml").write_text("data: {batch_size: 3}\n")
    (tmp_path / "recipe.yaml").write_text("defaults: [data/sample, mine]\ndata: {num_workers: 0}\n")
    assert load_composed(tmp_path / "recipe.yaml")["data"] == {
        "data_dir": "data/sample_prepared",
        "raw_dir": "data/sample",
        "sample": {"num_words": 20, "train": 12, "val": 3, "test": 3, "seed": 0},
        "num_workers": 0,
        "batch_size": 3,
    }


@pytest.mark.parametrize(
    "files, message",
    [
        ({"a.yaml": "defaults: [b]\n", "b.yaml": "defaults: [a]\n"}, "include each other in a loop"),
        ({"a.yaml": "defaults: [nowhere]\n"}, "names 'nowhere', which is neither beside it nor a packaged config"),
        ({"a.yaml": "defaults: data/sample\n"}, "must be a list of recipe names"),
        ({"a.yaml": "- just\n- a list\n"}, "a config must be a mapping"),
        ({"a.yaml": "trainer: {max_epochs: [1\n"}, "not a readable YAML config"),
    ],
)
def test_broken_compositions_are_one_clear_error(files, message, tmp_path):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(TalkfaceError, match=re.escape(message)):
        load_composed(tmp_path / "a.yaml")


def test_every_loss_term_is_written_out_with_all_its_arguments():
    argv = rewrite_arguments(["fit", "-c", "landmark/sample"])
    temporal = _config(argv)["model"]["init_args"]["losses"]["temporal"]
    assert temporal == {
        "class_path": "temporal_residual",
        "init_args": {
            "weight": 1.0,
            "second_order_weight": 0.0,
            "mouth_weight": 3.0,
            "norm": "l2",
            "start_step": 0,
            "scale": 256.0,
        },
    }


def test_a_dotted_override_changes_one_key_of_one_term():
    plain = _config(rewrite_arguments(["fit", "-c", "landmark/sample"]))["model"]["init_args"]["losses"]
    for form in (
        ["--model.init_args.losses.temporal.init_args.weight", "0.5"],
        ["--model.init_args.losses.temporal.init_args.weight=0.5"],
    ):
        argv = rewrite_arguments(["fit", "-c", "landmark/sample", *form, "--trainer.max_epochs", "1"])
        assert argv[3:] == ["--trainer.max_epochs", "1"]  # the override is merged, not passed on
        changed = _config(argv)["model"]["init_args"]["losses"]
        assert changed["temporal"]["init_args"]["weight"] == 0.5
        changed["temporal"]["init_args"]["weight"] = 1.0
        assert changed == plain


def test_a_dotted_override_applies_to_the_losses_in_effect_at_its_place():
    argv = rewrite_arguments(
        [
            "fit",
            "-c",
            "landmark/sample",
            LOSSES,
            "{only: {class_path: temporal_residual}}",
            f"{LOSSES}.only.init_args.norm",
            "l1",
            "-c",
            "trainer/cpu",
        ]
    )
    assert yaml.safe_load(argv[4])["only"]["init_args"]["norm"] == "l1"
    assert _config(argv)["model"]["init_args"]["losses"]["temporal"]["init_args"]["norm"] == "l2"
    assert "losses" not in str(argv[6])  # trainer/cpu, composed as is


def test_a_new_term_can_be_added_by_class_path():
    argv = rewrite_arguments(
        [
            "fit",
            "-c",
            "landmark/sample",
            f"{LOSSES}.sync.class_path",
            "audio_landmark_sync",
            f"{LOSSES}.sync.init_args.weight",
            "0.2",
        ]
    )
    assert _config(argv)["model"]["init_args"]["losses"]["sync"]["init_args"]["weight"] == 0.2


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            [f"{LOSSES}.temporal.init_args.wieght", "0.5"],
            "loss term 'temporal' (temporal_residual): unknown argument(s) wieght; it takes weight",
        ),
        (
            [f"{LOSSES}.nope.init_args.weight", "0.5"],
            "no loss term 'nope' is configured (terms: reconstruction, detector, temporal, semantic)",
        ),
        ([f"{LOSSES}.temporal.weight", "0.5"], "a loss term has only class_path and init_args.KEY"),
        ([LOSSES, "[1, 2]"], "expected a mapping of loss terms"),
        ([LOSSES, "{bad: {class_path: no_such_loss}}"], "unknown loss term 'no_such_loss'"),
    ],
)
def test_bad_loss_overrides_are_one_clear_error(extra, message):
    with pytest.raises(TalkfaceError, match=re.escape(message)):
        rewrite_arguments(["fit", "-c", "landmark/sample", *extra])


def test_an_override_before_any_losses_says_what_to_do():
    with pytest.raises(TalkfaceError, match="no losses are configured before it"):
        rewrite_arguments(["fit", f"{LOSSES}.temporal.init_args.weight", "0.5", "-c", "landmark/sample"])


def test_the_readme_loss_weight_example_works_as_written(tmp_path):
    """The README's own command line, with --print_config so it stops after parsing."""
    readme = (REPO / "README.md").read_text()
    example = next(
        line.strip()
        for line in readme.splitlines()
        if line.startswith("talkface fit") and f"{LOSSES}.temporal.init_args.weight" in line
    )
    args = shlex.split(example.split("#")[0])[1:]
    result = subprocess.run(
        [sys.executable, "-m", "talkface.cli", *args, "--print_config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "WANDB_MODE": "disabled"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    losses = yaml.safe_load(result.stdout)["model"]["init_args"]["losses"]
    value = float(args[args.index(f"{LOSSES}.temporal.init_args.weight") + 1])
    assert losses["temporal"] == {
        "class_path": "temporal_residual",
        "init_args": {
            "weight": value,
            "second_order_weight": 0.0,
            "mouth_weight": 3.0,
            "norm": "l2",
            "start_step": 0,
            "scale": 256.0,
        },
    }
    assert losses["reconstruction"]["init_args"]["mouth_weight"] == 3.0  # the other terms untouched
