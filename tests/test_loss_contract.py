"""The loss contract: a configured term must find its fields, and a term that cannot be built says why.

Through the CLI the mistake is one line on stderr and exit code 2, before any training; in Python
it is a TalkfaceError chained to its cause.
"""

from __future__ import annotations

import pytest
import torch

from lightning_modules import FaceGenModule, LandmarkModule
from losses import build_loss
from talkface.cli import main
from talkface.errors import TalkfaceError
from tests.helpers.cli import data_overrides, small_model

RECIPE = "configs/landmark/sample.yaml"


def fit(prepared, root, *extra: str) -> int:
    return main(
        [
            "fit",
            "-c",
            RECIPE,
            *data_overrides(prepared, root),
            *small_model(RECIPE),
            "--trainer.max_epochs",
            "1",
            *extra,
        ]
    )


def losses_with(name: str, class_path: str, init_args: str = "{}") -> list[str]:
    """A valid objective plus one more term."""
    return [
        "--model.init_args.losses",
        f"{{reconstruction: {{class_path: landmark_reconstruction}}, {name}: {{class_path: {class_path}, init_args: {init_args}}}}}",
    ]


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("talkface fit: error:"), lines
    assert not any("Traceback" in line for line in lines), lines
    return lines[-1]


def test_a_term_reading_a_field_the_module_does_not_load_stops_fit_before_training(tiny_prepared, tmp_path, capsys):
    code = fit(tiny_prepared, tmp_path, *losses_with("lipsync", "tests.helpers.custom_losses.PhonemeAlignment"))
    line = one_error_line(capsys)
    assert code == 2
    assert "loss term 'lipsync' (tests.helpers.custom_losses.PhonemeAlignment)" in line
    assert "batch field 'phonemes'" in line and "LandmarkModule does not load" in line and "audio_windows" in line
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("metrics.csv")), "training started"


def test_a_users_well_formed_term_passes_the_check(tiny_prepared, tmp_path):
    code = fit(
        tiny_prepared,
        tmp_path,
        *losses_with("lipwidth", "tests.helpers.custom_losses.LipWidth"),
        "--trainer.limit_train_batches",
        "1",
        "--trainer.limit_val_batches",
        "0",
    )
    assert code == 0


def test_the_datamodules_own_field_list_is_checked_too(tiny_prepared, tmp_path, capsys):
    # The recipe's word terms (semantic, detector) read `word`; this field list leaves it out.
    code = fit(tiny_prepared, tmp_path, "--data.fields", "[id, audio_windows, landmarks, identity_landmarks, audio]")
    line = one_error_line(capsys)
    assert code == 2 and "(losses.word_semantic." in line and "reads batch field 'word'" in line
    assert "the DataModule (data.fields) does not load" in line


def test_a_loss_module_that_fails_to_import_reports_its_import_error(tiny_prepared, tmp_path, capsys, monkeypatch):
    (tmp_path / "studio_losses.py").write_text("raise ImportError('libsyncnet.so: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = fit(tiny_prepared, tmp_path, *losses_with("sync", "studio_losses.SyncLoss"))
    line = one_error_line(capsys)
    assert code == 2
    assert "studio_losses" in line and "ImportError: libsyncnet.so: cannot open shared object file" in line
    assert "unknown loss term" not in line


def test_a_missing_dependency_of_a_loss_module_is_an_import_error_not_an_unknown_name(tmp_path, monkeypatch):
    (tmp_path / "lab_losses.py").write_text("import lipreading_toolkit_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TalkfaceError) as error:
        build_loss({"class_path": "lab_losses.LipReading"}, name="lipread")
    message = str(error.value)
    assert "\n" not in message and "importing lab_losses failed" in message
    assert "lipreading_toolkit_not_installed" in message and "unknown loss term" not in message
    assert isinstance(error.value.__cause__, ModuleNotFoundError)


def test_a_module_that_does_not_exist_is_still_an_unknown_name():
    with pytest.raises(TalkfaceError) as error:
        build_loss({"class_path": "no_such_package.losses.LipWidth"})
    message = str(error.value)
    assert "\n" not in message and "unknown loss term 'no_such_package.losses.LipWidth'" in message
    assert "registered:" in message and "temporal_residual" in message


def test_a_class_missing_from_an_existing_module_is_named():
    with pytest.raises(TalkfaceError, match="tests.helpers.custom_losses has no 'NoSuchTerm'"):
        build_loss({"class_path": "tests.helpers.custom_losses.NoSuchTerm"})


def test_an_error_inside_a_terms_init_keeps_its_cause(tiny_prepared, tmp_path, capsys):
    with pytest.raises(TalkfaceError) as error:
        build_loss({"class_path": "tests.helpers.custom_losses.NeedsLipModel"}, name="lips")
    assert isinstance(error.value.__cause__, ValueError)
    assert "loss term 'lips' (tests.helpers.custom_losses.NeedsLipModel)" in str(error.value)
    assert "ValueError in __init__: lip_model must name a lip-reading model file" in str(error.value)

    code = fit(tiny_prepared, tmp_path, *losses_with("lips", "tests.helpers.custom_losses.NeedsLipModel"))
    line = one_error_line(capsys)
    assert code == 2 and "lip_model must name a lip-reading model file" in line


def test_bad_init_args_stay_one_line_with_their_cause():
    with pytest.raises(TalkfaceError) as error:
        build_loss(
            {"class_path": "tests.helpers.custom_losses.NeedsLipModel", "init_args": {"lip_modle": "x"}}, name="lips"
        )
    message = str(error.value)
    assert "\n" not in message and "bad init_args" in message and "lip_modle" in message
    assert isinstance(error.value.__cause__, TypeError)


@pytest.mark.parametrize(
    "module, term, expected",
    [
        # A stage-2 term in stage 1: the discriminator's logits do not exist there.
        (LandmarkModule, "adversarial", "reads output 'fake_logits', which LandmarkModule does not produce"),
        # A stage-1 term in stage 2: its terms see (target, reference) pairs, not landmark sequences.
        (
            FaceGenModule,
            "temporal_residual",
            "reads batch field 'landmarks', which FaceGenModule does not give its loss terms",
        ),
        (FaceGenModule, "word_semantic", "reads batch field 'word', which FaceGenModule does not give its loss terms"),
    ],
)
def test_a_term_of_the_other_stage_is_refused_when_the_module_is_built(module, term, expected):
    with pytest.raises(TalkfaceError) as error:
        module(losses={"misplaced": {"class_path": term}})
    message = str(error.value)
    assert "\n" not in message and expected in message and message.startswith("loss term 'misplaced' (losses.")


def test_every_built_in_default_objective_satisfies_its_module():
    LandmarkModule(num_words=4, hidden=16, audio_dim=16, detector_hidden=8)
    FaceGenModule(base_channels=4, use_previous_frame=True)


def test_the_declared_outputs_are_what_landmark_module_produces():
    """`output_fields` is what the check trusts: with every term that reads one, `run` makes them all."""
    terms = [
        "landmark_reconstruction",
        "temporal_residual",
        "word_semantic",
        "word_detector",
        "audio_word",
        "audio_landmark_sync",
    ]
    torch.manual_seed(0)
    module = LandmarkModule(
        num_words=5,
        feature_dim=16,
        audio_dim=32,
        hidden=32,
        layers=1,
        detector_hidden=16,
        losses={name: {"class_path": name} for name in terms},
    )
    batch = {
        "audio_windows": torch.randn(2, 6, 8, 16),
        "identity_landmarks": torch.rand(2, 68, 2),
        "landmarks": torch.rand(2, 6, 68, 2),
        "word": torch.tensor([1, -1]),
    }
    assert set(module.run(batch)) == set(LandmarkModule.output_fields)
