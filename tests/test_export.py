"""`talkface export`: a trained stage as a .safetensors release, read by generate and evaluate in
place of the .ckpt, with the same pictures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lightning_modules import FaceGenModule, LandmarkModule
from talkface.cli import main
from talkface.generation import generate
from talkface.generation.checkpoints import load_stage, save_untrained
from talkface.media import read_video
from tests.helpers.media_factory import astronaut_face, tone, write_audio_file


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    cv2.imwrite(str(folder / "face.png"), cv2.cvtColor(astronaut_face(200), cv2.COLOR_RGB2BGR))
    speech = tone(1.2, 16000, 220.0) * (0.6 + 0.4 * np.sin(np.linspace(0, 8, 19200)))
    return {
        "landmark": save_untrained(
            LandmarkModule(num_words=4, hidden=32, audio_dim=32, layers=1), folder / "landmark.ckpt", 128, list("ABCD")
        ),
        "generator": save_untrained(FaceGenModule(base_channels=8), folder / "generator.ckpt", 128, list("ABCD")),
        "image": folder / "face.png",
        "audio": write_audio_file(folder / "speech.wav", speech.astype(np.float32), 16000),
    }


def export(source: Path, out: Path, *extra: str) -> Path:
    assert main(["export", str(source), "--out", str(out), *extra]) == 0
    return out


def metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as release:
        return release.metadata()


def frames(files: dict, landmark: Path, generator: Path, out: Path) -> np.ndarray:
    generate(files["image"], files["audio"], landmark, generator, out, progress=False)
    return read_video(out).frames


# ---- what a release holds
def test_a_release_holds_the_weights_generation_needs_and_plain_metadata(untrained, tmp_path):
    for stage, cls in (("landmark", LandmarkModule), ("generator", FaceGenModule)):
        release = export(untrained[stage], tmp_path / f"{stage}.safetensors")
        checkpoint = torch.load(untrained[stage], map_location="cpu", weights_only=True)
        weights = load_file(str(release))
        kept = ("generator.", "word_detector.") if cls is LandmarkModule else ("generator.",)
        assert set(weights) == {key for key in checkpoint["state_dict"] if key.startswith(kept)}
        for key, value in weights.items():
            assert torch.equal(value, checkpoint["state_dict"][key]), key
        info = metadata(release)
        assert info["stage"] == cls.__name__ and info["dtype"] == "float32"
        assert json.loads(info["talkface_data"]) == checkpoint["talkface_data"]
        init_args = json.loads(info["init_args"])
        assert {
            key: value for key, value in checkpoint["hyper_parameters"].items() if not key.startswith("_")
        }.keys() == init_args.keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "generator.safetensors",
        "landmark.safetensors",
    ]  # no temporary files
    generator_keys = load_file(str(tmp_path / "generator.safetensors")).keys()
    assert not any(key.startswith("discriminator.") for key in generator_keys)


def test_fp16_halves_floating_weights_and_loading_casts_them_back(untrained, tmp_path):
    full = export(untrained["generator"], tmp_path / "g32.safetensors")
    half = export(untrained["generator"], tmp_path / "g16.safetensors", "--fp16")
    assert metadata(half)["dtype"] == "float16"
    assert {value.dtype for value in load_file(str(half)).values() if value.is_floating_point()} == {torch.float16}
    assert half.stat().st_size < 0.55 * full.stat().st_size
    model, _ = load_stage(half, FaceGenModule)
    reference, _ = load_stage(untrained["generator"], FaceGenModule)
    for key, value in reference.generator.state_dict().items():
        loaded = model.generator.state_dict()[key]
        assert loaded.dtype == value.dtype
        assert torch.allclose(loaded, value, rtol=1e-3, atol=1e-4), key


def test_an_untrained_pair_makes_the_same_video_from_releases(untrained, tmp_path):
    landmark = export(untrained["landmark"], tmp_path / "landmark.safetensors")
    generator = export(untrained["generator"], tmp_path / "generator.safetensors")
    expected = frames(untrained, untrained["landmark"], untrained["generator"], tmp_path / "ckpt.mp4")
    got = frames(untrained, landmark, generator, tmp_path / "release.mp4")
    assert got.shape == expected.shape and np.array_equal(got, expected)


def test_a_release_can_be_exported_again_as_fp16(untrained, tmp_path):
    full = export(untrained["landmark"], tmp_path / "a.safetensors")
    half = export(full, tmp_path / "b.safetensors", "--fp16")
    assert metadata(half)["init_args"] == metadata(full)["init_args"]
    assert json.loads(metadata(half)["source"]) == json.loads(metadata(full)["source"])


# ---- user errors: one line, exit 2, nothing written
def one_line(capsys, command: str = "export") -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"talkface {command}: error:"), lines
    return lines[0]


@pytest.mark.parametrize(
    "case, phrase",
    [
        ("missing", "no such checkpoint file"),
        ("text", "not a readable PyTorch checkpoint"),
        ("not lightning", "not a Lightning checkpoint"),
        ("wrong suffix", "give a name ending in .safetensors"),
    ],
)
def test_export_of_a_bad_file_is_one_line_and_writes_nothing(case, phrase, untrained, tmp_path, capsys):
    source, out = tmp_path / "in.ckpt", tmp_path / "out" / "model.safetensors"
    if case == "text":
        source.write_text("not a checkpoint\n")
    elif case == "not lightning":
        torch.save({"weight": torch.zeros(3)}, source)
    elif case == "wrong suffix":
        source, out = untrained["landmark"], tmp_path / "out" / "model.ckpt"
    assert main(["export", str(source), "--out", str(out)]) == 2
    assert phrase in one_line(capsys)
    assert not out.parent.exists()


def test_a_failed_export_leaves_an_existing_release_as_it_was(untrained, tmp_path, capsys):
    out = export(untrained["landmark"], tmp_path / "model.safetensors")
    before = out.read_bytes()
    (tmp_path / "bad.ckpt").write_text("not a checkpoint\n")
    assert main(["export", str(tmp_path / "bad.ckpt"), "--out", str(out)]) == 2
    one_line(capsys)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ckpt", "model.safetensors"]


def test_generate_names_a_release_of_the_wrong_stage_or_with_wrong_weights(untrained, tmp_path, capsys):
    landmark = export(untrained["landmark"], tmp_path / "landmark.safetensors")
    generator = export(untrained["generator"], tmp_path / "generator.safetensors")
    weights, info = load_file(str(generator)), metadata(generator)
    weights.pop(next(iter(weights)))
    save_file(weights, str(tmp_path / "short.safetensors"), metadata=info)
    cases = [
        ({"landmark-ckpt": generator}, "this is a stage-2 (face generator) model; --landmark-ckpt needs a stage-1"),
        ({"generator-ckpt": landmark}, "this is a stage-1 (landmark) model; --generator-ckpt needs a stage-2"),
        ({"generator-ckpt": tmp_path / "short.safetensors"}, "its weights do not match"),
        ({"generator-ckpt": tmp_path / "absent.safetensors"}, "no such"),
    ]
    for change, phrase in cases:
        options = {
            "image": untrained["image"],
            "audio": untrained["audio"],
            "landmark-ckpt": landmark,
            "generator-ckpt": generator,
            "out": tmp_path / "out" / "v.mp4",
        } | change
        assert main(["generate", "--quiet", *[p for k, v in options.items() for p in (f"--{k}", str(v))]]) == 2
        assert phrase in one_line(capsys, "generate")
    assert not (tmp_path / "out").exists()


# ---- trained models (slow: the session's small_checkpoints fixture trains for about a minute)
@pytest.mark.slow
def test_releases_of_trained_models_make_the_same_frames(small_checkpoints, tiny_prepared, tmp_path):
    """fp32: the decoded video is identical. fp16: each stage's output on the same inputs is within
    2 grey levels; the H.264 video, whose encoder decisions flip on such changes, within 1 on average."""
    from datamodules import LRWDataModule

    cv2.imwrite(str(tmp_path / "face.png"), cv2.cvtColor(astronaut_face(200), cv2.COLOR_RGB2BGR))
    speech = tone(1.2, 16000, 220.0) * (0.6 + 0.4 * np.sin(np.linspace(0, 8, 19200)))
    files = {
        "image": tmp_path / "face.png",
        "audio": write_audio_file(tmp_path / "speech.wav", speech.astype(np.float32), 16000),
    }
    releases = {
        (stage, dtype): export(
            path, tmp_path / f"{stage}_{dtype}.safetensors", *(["--fp16"] if dtype == "fp16" else [])
        )
        for stage, path in small_checkpoints.items()
        for dtype in ("fp32", "fp16")
    }
    expected = frames(files, small_checkpoints["landmark"], small_checkpoints["generator"], tmp_path / "ckpt.mp4")
    fp32 = frames(files, releases["landmark", "fp32"], releases["generator", "fp32"], tmp_path / "fp32.mp4")
    fp16 = frames(files, releases["landmark", "fp16"], releases["generator", "fp16"], tmp_path / "fp16.mp4")
    assert np.array_equal(fp32, expected)
    assert fp16.shape == expected.shape
    assert np.abs(fp16.astype(int) - expected).mean() <= 1.0

    data = LRWDataModule(
        str(tiny_prepared),
        batch_size=2,
        num_workers=0,
        fields=["frames", "landmarks", "audio_windows", "identity_landmarks"],
    )
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    models = {
        name: (load_stage(small_checkpoints[stage], cls)[0], load_stage(releases[stage, "fp16"], cls)[0])
        for name, stage, cls in (("landmarks", "landmark", LandmarkModule), ("frames", "generator", FaceGenModule))
    }
    with torch.no_grad():
        full, half = (model(batch["audio_windows"], batch["identity_landmarks"]) for model in models["landmarks"])
        assert (full - half).abs().max() < 1e-3  # in units of the face's size
        reference, landmarks = batch["frames"][0, 0].float() / 127.5 - 1, batch["landmarks"][0]  # uint8 → [-1, 1]
        full, half = (model.render_sequence(reference, landmarks[0], landmarks) for model in models["frames"])
        grey_levels = ((full.clamp(-1, 1) - half.clamp(-1, 1)) * 127.5).abs()  # [-1, 1] → [0, 255] units
        assert grey_levels.max() <= 2


@pytest.mark.slow
def test_evaluate_scores_a_release_as_its_checkpoint(small_checkpoints, tiny_prepared, tmp_path):
    from tests.helpers.cli import run_cli

    landmark = export(small_checkpoints["landmark"], tmp_path / "landmark.safetensors")
    generator = export(small_checkpoints["generator"], tmp_path / "generator.safetensors")
    out = tmp_path / "report"
    result = run_cli(
        ["evaluate", "--data", str(tiny_prepared), "--no-end-to-end", "--frame-stride", "8", "--batch-size", "4",
         "--landmark", f"ckpt={small_checkpoints['landmark']}", "--landmark", f"release={landmark}",
         "--generator", f"ckpt={small_checkpoints['generator']}", "--generator", f"release={generator}", "--out", str(out)],
        env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    tables = json.loads((out / "evaluation.json").read_text())["tables"]
    for table in ("stage1", "stage2"):
        rows = {row["name"]: row["metrics"] for row in tables[table]}
        assert rows["release"] == rows["ckpt"] and rows["ckpt"], table
