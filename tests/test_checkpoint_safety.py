"""Nothing in a model file runs code: a checkpoint whose pickle would call a function is refused
with one line before the call, at every place that reads one (generate, evaluate, export, a
frozen detector, `--ckpt_path best`, Lightning's `--ckpt_path`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

from lightning_modules import FaceGenModule, LandmarkModule
from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.generation.checkpoints import check_resume_checkpoint, load_stage, safe_torch_load, save_untrained
from tests.helpers.cli import cpu_overrides, data_overrides, generate_args, run_cli, small_model
from tests.helpers.media_factory import astronaut_face, tone, write_audio_file
from tests.helpers.real_data import REPO


class CreatesAFile:
    """Unpickling this calls open(marker, "w"): the file appearing means the pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_checkpoint(path: Path, marker: Path, model: torch.nn.Module) -> Path:
    """A file that looks like a Lightning checkpoint of `model` (real weights, hyper-parameters),
    with the payload where Lightning keeps callback state."""
    torch.save(
        {
            "epoch": 3,
            "global_step": 12,
            "pytorch-lightning_version": "2.6.0",
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams) | {"_class_path": f"lightning_modules.{type(model).__name__}"},
            "callbacks": {"ModelCheckpoint{'monitor': 'val/lmd_mouth'}": {"best_model_path": CreatesAFile(marker)}},
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("safety")
    marker = folder / "payload_ran"
    landmark = LandmarkModule(num_words=4, hidden=16, audio_dim=16, layers=1)
    generator = FaceGenModule(base_channels=8)
    cv2.imwrite(str(folder / "face.png"), cv2.cvtColor(astronaut_face(160), cv2.COLOR_RGB2BGR))
    return {
        "marker": marker,
        "landmark": save_untrained(landmark, folder / "landmark.ckpt", 128, list("ABCD")),
        "generator": save_untrained(generator, folder / "generator.ckpt", 128, list("ABCD")),
        "evil_landmark": malicious_checkpoint(folder / "evil_landmark.ckpt", marker, landmark),
        "evil_generator": malicious_checkpoint(folder / "evil_generator.ckpt", marker, generator),
        "image": folder / "face.png",
        "audio": write_audio_file(folder / "speech.wav", tone(1.0, 16000, 220.0), 16000),
        "folder": folder,
    }


def assert_refused(code: int, stderr: str, command: str, marker: Path) -> str:
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith(f"talkface {command}: error:"), lines
    assert "refused" in lines[0] and "not plain data" in lines[0] and "weights_only=True" in lines[0], lines[0]
    assert not marker.exists(), "the checkpoint's payload ran"
    return lines[0]


def test_the_crafted_checkpoint_really_runs_code_when_unpickled_unsafely(files, tmp_path):
    """The control: without weights_only the same file creates its marker (so the tests below
    could fail). Run in a child process so the marker it makes is its own."""
    marker = tmp_path / "control_marker"
    evil = malicious_checkpoint(
        tmp_path / "control.ckpt", marker, LandmarkModule(num_words=2, hidden=8, audio_dim=8, layers=1)
    )
    subprocess.run(
        [sys.executable, "-c", f"import torch; torch.load({str(evil)!r}, weights_only=False)"], check=True, cwd=REPO
    )
    assert marker.exists()


@pytest.mark.parametrize("option", ["landmark-ckpt", "generator-ckpt"])
def test_generate_refuses_a_checkpoint_that_would_run_code(option, files, tmp_path, capsys):
    evil = files["evil_landmark"] if option == "landmark-ckpt" else files["evil_generator"]
    out = tmp_path / "out" / "video.mp4"
    code = main(generate_args(files, out, **{option: evil}))
    line = assert_refused(code, capsys.readouterr().err, "generate", files["marker"])
    assert f"--{option} {evil}" in line and "io.open" in line
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_generate_refuses_it_from_a_real_process_in_one_line(files, tmp_path):
    result = run_cli(generate_args(files, tmp_path / "v.mp4", **{"landmark-ckpt": files["evil_landmark"]}), timeout=300)
    assert_refused(result.returncode, result.stderr, "generate", files["marker"])
    assert "Traceback" not in result.stderr and not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("option", ["--landmark", "--generator"])
def test_evaluate_refuses_a_checkpoint_that_would_run_code(option, files, tmp_path, capsys):
    evil = files["evil_landmark"] if option == "--landmark" else files["evil_generator"]
    code = main(
        ["evaluate", "--data", str(files["folder"]), option, f"suspect={evil}", "--out", str(tmp_path / "report")]
    )
    assert_refused(code, capsys.readouterr().err, "evaluate", files["marker"])
    assert not (tmp_path / "report").exists()


def test_export_refuses_a_checkpoint_that_would_run_code(files, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    assert_refused(
        main(["export", str(files["evil_generator"]), "--out", str(out)]),
        capsys.readouterr().err,
        "export",
        files["marker"],
    )
    assert list(tmp_path.iterdir()) == []


def test_a_frozen_detector_from_such_a_checkpoint_is_refused(files):
    with pytest.raises(TalkfaceError, match="refused"):
        LandmarkModule(
            num_words=4,
            hidden=16,
            audio_dim=16,
            layers=1,
            detector="frozen",
            detector_checkpoint=str(files["evil_landmark"]),
        )
    assert not files["marker"].exists()


def test_a_frozen_detector_still_loads_from_a_plain_checkpoint_and_a_release(files, tmp_path):
    source, _ = load_stage(files["landmark"], LandmarkModule)
    assert main(["export", str(files["landmark"]), "--out", str(tmp_path / "landmark.safetensors")]) == 0
    for path in (files["landmark"], tmp_path / "landmark.safetensors"):
        frozen = LandmarkModule(
            num_words=4, hidden=16, audio_dim=16, layers=1, detector="frozen", detector_checkpoint=str(path)
        )
        for name, value in source.word_detector.state_dict().items():
            assert torch.equal(frozen.word_detector.state_dict()[name], value), name


def test_best_recorded_in_a_malicious_last_checkpoint_is_refused(files, tmp_path):
    from talkface.training_cli import best_recorded_in

    last = malicious_checkpoint(
        tmp_path / "last.ckpt", files["marker"], LandmarkModule(num_words=2, hidden=8, audio_dim=8, layers=1)
    )
    with pytest.raises(TalkfaceError, match="refused"):
        best_recorded_in(last)
    assert not files["marker"].exists()


def test_our_own_checkpoints_need_no_unsafe_load(files):
    """What save_untrained and training write is plain data (tensors, numbers, strings, dicts)."""
    for stage in ("landmark", "generator"):
        checkpoint = safe_torch_load(files[stage])
        assert set(checkpoint) >= {"state_dict", "hyper_parameters", "talkface_data"}


@pytest.mark.slow
def test_trained_checkpoints_load_with_weights_only(small_checkpoints):
    for path in small_checkpoints.values():
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        assert {"optimizer_states", "callbacks", "loops", "talkface_data"} <= set(checkpoint)


def test_a_loss_term_outside_the_registry_is_not_imported_by_loading(files, tmp_path, monkeypatch, capsys):
    """Hyper-parameters are plain data but rebuild the model: a `module.Class` loss term in them
    would import that module (running its code). Loading refuses unless it is already imported."""
    package = tmp_path / "site"
    package.mkdir()
    marker = tmp_path / "imported"
    (package / "sneaky_losses.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(package))
    checkpoint = torch.load(files["landmark"], map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["losses"] = {"extra": {"class_path": "sneaky_losses.Term", "init_args": {}}}
    torch.save(checkpoint, tmp_path / "custom.ckpt")
    with pytest.raises(TalkfaceError, match="refused: its loss term 'extra' is sneaky_losses.Term"):
        load_stage(tmp_path / "custom.ckpt", LandmarkModule)
    with pytest.raises(TalkfaceError, match="refused: its loss term"):  # what `talkface fit --ckpt_path` checks
        check_resume_checkpoint(tmp_path / "custom.ckpt", "--ckpt_path")
    checkpoint["hyper_parameters"]["_class_path"] = "sneaky_losses.Model"
    torch.save(checkpoint, tmp_path / "custom.ckpt")
    with pytest.raises(TalkfaceError, match="refused: it names the model class sneaky_losses.Model"):
        check_resume_checkpoint(tmp_path / "custom.ckpt", "--ckpt_path")
    assert not marker.exists()
    check_resume_checkpoint(files["landmark"], "--ckpt_path")  # our own: fine


@pytest.mark.slow
def test_lightning_ckpt_path_is_read_safely_even_when_torch_is_told_not_to(files, tiny_prepared, tmp_path):
    """`talkface test --ckpt_path FILE`: Lightning's own read. TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
    turns torch's default off; talkface asks for weights_only=True explicitly and checks first."""
    recipe = "configs/landmark/sample.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "talkface.cli",
            "test",
            "-c",
            recipe,
            *cpu_overrides(),
            *small_model(recipe),
            *data_overrides(tiny_prepared, tmp_path),
            "--ckpt_path",
            str(files["evil_landmark"]),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "WANDB_MODE": "disabled", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
    )
    assert_refused(result.returncode, result.stderr, "test", files["marker"])


def test_a_safetensors_file_that_is_not_a_talkface_model_is_one_line(files, tmp_path, capsys):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    for path, phrase in (
        (tmp_path / "other.safetensors", "not a talkface model"),
        (tmp_path / "broken.safetensors", "not a readable safetensors"),
    ):
        assert main(generate_args(files, tmp_path / "v.mp4", **{"generator-ckpt": path})) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and phrase in lines[0] and f"--generator-ckpt {path}" in lines[0], lines


def test_release_metadata_is_plain_json(files, tmp_path):
    from safetensors import safe_open

    assert main(["export", str(files["generator"]), "--out", str(tmp_path / "g.safetensors")]) == 0
    with safe_open(str(tmp_path / "g.safetensors"), framework="pt") as release:
        metadata = release.metadata()
    assert all(isinstance(value, str) for value in metadata.values())
    assert json.loads(metadata["talkface_data"])["vocabulary"] == list("ABCD")
    assert json.loads(metadata["init_args"])["base_channels"] == 8 and metadata["stage"] == "FaceGenModule"
