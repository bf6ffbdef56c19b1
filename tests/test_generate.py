"""`talkface generate`: photo + speech → mp4, from the Python API and the command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lightning_modules import FaceGenModule, LandmarkModule
from talkface import SAMPLE_RATE
from talkface.cli import main
from talkface.faces import get_extractor
from talkface.generation import generate
from talkface.generation.checkpoints import save_untrained
from talkface.media import read_audio, read_video
from tests.helpers.cli import generate_args, run_cli
from tests.helpers.media_factory import astronaut_face, tone, write_audio_file
from tests.helpers.real_data import REAL_DATA, REPO, needs_real_data, real_files
from tests.helpers.untrained import untrained_inputs


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> dict[str, Path]:
    """Small untrained checkpoints, photo and speech: enough for everything but picture quality."""
    folder = tmp_path_factory.mktemp("untrained")
    return {**untrained_inputs(folder), "folder": folder}


def test_generate_makes_one_frame_per_640_samples_with_the_audio(untrained, tmp_path):
    out = tmp_path / "talking.mp4"
    result = generate(untrained["image"], untrained["audio"], untrained["landmark"], untrained["generator"], out)
    audio = read_audio(untrained["audio"])
    clip = read_video(out)
    assert result.frames == len(clip.frames) == math.ceil(len(audio) / 640)
    assert clip.frames.shape[1:] == (200, 200, 3)  # pasted back into the whole photo
    assert abs(len(clip.audio) - len(audio)) <= 640
    assert result.first_frame_seconds <= result.seconds
    assert list(tmp_path.iterdir()) == [out]  # no temporary files left beside it


def test_generate_without_paste_back_writes_the_aligned_crop(untrained, tmp_path):
    assert main(generate_args(untrained, tmp_path / "crop.mp4") + ["--no-paste-back"]) == 0
    assert read_video(tmp_path / "crop.mp4").frames.shape[1:] == (128, 128, 3)


def test_generate_accepts_loaded_modules(untrained, tmp_path):
    from talkface.generation.checkpoints import load_stage

    landmark, _ = load_stage(untrained["landmark"], LandmarkModule)
    face, _ = load_stage(untrained["generator"], FaceGenModule)
    image = astronaut_face(256)
    result = generate(image, untrained["audio"], landmark, face, tmp_path / "api.mp4")
    assert result.path.exists() and result.size == (256, 256)


def test_a_failure_part_way_leaves_no_output(untrained, tmp_path, monkeypatch):
    from talkface.faces.paste import FacePaster

    calls = {"count": 0}
    original = FacePaster.paste

    def fail_later(self, crop):
        calls["count"] += 1
        if calls["count"] > 10:
            raise RuntimeError("disk full")
        return original(self, crop)

    monkeypatch.setattr(FacePaster, "paste", fail_later)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(
            untrained["image"], untrained["audio"], untrained["landmark"], untrained["generator"], tmp_path / "x.mp4"
        )
    assert list(tmp_path.iterdir()) == []


def bad_inputs(files: dict, folder: Path) -> dict[str, tuple[dict, str]]:
    """Each case: the changed arguments and a phrase the one-line error must contain."""
    (folder / "notes.png").write_text("not an image\n")
    (folder / "notes.ckpt").write_text("not a checkpoint\n")
    cv2.imwrite(str(folder / "wall.png"), np.full((240, 240, 3), 128, np.uint8))
    silent = write_audio_file(folder / "silent.wav", np.zeros(SAMPLE_RATE * 2, np.float32), SAMPLE_RATE)
    short = write_audio_file(folder / "short.wav", tone(0.1, SAMPLE_RATE), SAMPLE_RATE)
    return {
        "no face": ({"image": folder / "wall.png"}, "no face found"),
        "unreadable image": ({"image": folder / "notes.png"}, "not a readable image"),
        "missing image": ({"image": folder / "absent.jpg"}, "no such file"),
        "silent audio": ({"audio": silent}, "silent"),
        "too short audio": ({"audio": short}, "too short"),
        "missing checkpoint": ({"landmark-ckpt": folder / "absent.ckpt"}, "no such checkpoint"),
        "not a checkpoint": ({"generator-ckpt": folder / "notes.ckpt"}, "not a readable PyTorch checkpoint"),
        "stages swapped": (
            {"landmark-ckpt": files["generator"], "generator-ckpt": files["landmark"]},
            "needs a stage-1",
        ),
        "not an mp4": ({"out": folder / "out" / "video.avi"}, "mp4"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "no face",
        "unreadable image",
        "missing image",
        "silent audio",
        "too short audio",
        "missing checkpoint",
        "not a checkpoint",
        "stages swapped",
        "not an mp4",
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(case, untrained, tmp_path, capsys):
    changes, phrase = bad_inputs(untrained, tmp_path)[case]
    out_dir = tmp_path / "out"
    out = changes.pop("out", out_dir / "video.mp4")
    assert main(generate_args(untrained, out, **changes)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("talkface generate: error:"), error
    assert phrase in error[0]
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


@pytest.mark.slow
def test_no_face_from_a_real_process_is_one_line_without_traceback(untrained, tmp_path):
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((240, 240, 3), 128, np.uint8))
    result = run_cli(generate_args(untrained, tmp_path / "v.mp4", image=tmp_path / "wall.png"), timeout=300)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "v.mp4").exists()


# ---- with checkpoints trained in this session (real training, tiny models)
@pytest.mark.slow
def test_trained_checkpoints_carry_their_data_facts(small_checkpoints, tiny_prepared):
    meta = json.loads((tiny_prepared / "meta.json").read_text())
    for path in small_checkpoints.values():
        facts = torch.load(path, map_location="cpu", weights_only=False)["talkface_data"]
        assert facts["features"] == meta["features"] and facts["crop_size"] == meta["crop_size"]


@pytest.mark.slow
@needs_real_data()
@pytest.mark.parametrize("models", ["sample-trained", "released"])
@pytest.mark.parametrize(
    "face,speech", list(zip(real_files("faces"), real_files("audio"), strict=False)), ids=lambda p: p.name
)
def test_every_real_photo_talks_with_real_speech(face, speech, models, small_checkpoints, tmp_path):
    from talkface.weights import released_checkpoints

    out = tmp_path / "talking.mp4"
    if models == "released":
        landmark, generator = released_checkpoints()  # shipped with the package: missing fails, never skips
    else:
        landmark, generator = small_checkpoints["landmark"], small_checkpoints["generator"]
    result = generate(face, speech, landmark, generator, out)
    clip = read_video(out)
    assert clip.fps == 25 and len(clip.audio) > 0
    audio_seconds = len(read_audio(speech)) / SAMPLE_RATE
    assert abs(len(clip.frames) / 25 - audio_seconds) <= 1 / 25
    assert len(clip.frames) == result.frames
    extractor = get_extractor("dlib")
    found = sum(bool(extractor.detect(frame)) for frame in clip.frames)
    assert found >= 0.95 * len(clip.frames), f"a face in only {found} of {len(clip.frames)} frames"
    if models == "released":  # the mouth talks: its opening, re-detected, moves with the speech
        box = extractor.detect(clip.frames[0])[0]
        points = np.stack([extractor.fit(frame, box) for frame in clip.frames[::2]])
        gap = np.linalg.norm(points[:, [61, 62, 63]] - points[:, [67, 66, 65]], axis=2).mean(1)
        opening = gap / np.linalg.norm(points[:, 54] - points[:, 48], axis=1)
        assert opening.std() > 0.012, opening  # 0.021-0.066 on these photos; 0.004-0.009 with the mouth shut


# VmHWM: this process's own peak (ru_maxrss would include the pytest parent's, kept across exec).
PEAK_RSS_SCRIPT = """
import sys
from talkface.generation import generate
generate(*sys.argv[1:6])
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


@pytest.mark.slow
@needs_real_data()
def test_peak_memory_does_not_grow_with_the_audio(small_checkpoints, tmp_path):
    """10 s against 60 s here (CI time); `talkface benchmark` reports 10 s against 120 s."""
    speech = read_audio(real_files("audio")[4])  # 8 s of real speech, repeated
    face = REAL_DATA / "faces" / "lrw_ABOUT_00001_frame.jpg"
    peaks = {}
    for seconds in (10, 60):
        samples = np.tile(speech, math.ceil(seconds * SAMPLE_RATE / len(speech)))[: seconds * SAMPLE_RATE]
        audio = write_audio_file(tmp_path / f"speech_{seconds}.wav", samples, SAMPLE_RATE)
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_RSS_SCRIPT,
                str(face),
                str(audio),
                str(small_checkpoints["landmark"]),
                str(small_checkpoints["generator"]),
                str(tmp_path / f"out_{seconds}.mp4"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        peaks[seconds] = int(result.stdout.split()[-1]) / 1024  # MiB
    print(f"peak RSS: 10 s of audio {peaks[10]:.0f} MiB, 60 s {peaks[60]:.0f} MiB")
    assert peaks[60] <= 1.15 * peaks[10], peaks


def test_a_warping_generator_keeps_the_photo_sharp_at_its_own_resolution(untrained, tmp_path):
    """Pasting a 128-pixel crop softens a 480-pixel face; warping the photo itself does not."""
    image = tmp_path / "big.png"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut_face(480), cv2.COLOR_RGB2BGR))
    photo = torch.from_numpy(cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2GRAY)).float()
    face_box = (slice(140, 340), slice(140, 340))

    def laplacian_variance(frame: np.ndarray) -> float:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[face_box].astype(np.float64)
        return float(cv2.Laplacian(grey, cv2.CV_64F).var())

    sharpness = {}
    for warp in (False, True):
        torch.manual_seed(0)
        generator = save_untrained(
            FaceGenModule(base_channels=8, warp_reference=warp), tmp_path / f"g{warp}.ckpt", 128, list("ABCD")
        )
        out = tmp_path / f"warp{warp}.mp4"
        generate(image, untrained["audio"], untrained["landmark"], generator, out)
        frames = read_video(out).frames
        assert frames.shape[1:] == (480, 480, 3)
        sharpness[warp] = np.mean([laplacian_variance(frame) for frame in frames[::10]])
    still = float(cv2.Laplacian(photo[face_box].numpy().astype(np.float64), cv2.CV_64F).var())
    assert sharpness[True] > 0.8 * still > sharpness[False]


def test_without_checkpoint_options_a_missing_release_is_one_line(untrained, tmp_path, monkeypatch, capsys):
    import talkface.weights

    monkeypatch.setattr(talkface.weights, "LANDMARK", tmp_path / "absent.safetensors")
    args = ["generate", "--image", str(untrained["image"]), "--audio", str(untrained["audio"])]
    assert main([*args, "--out", str(tmp_path / "o.mp4")]) == 2
    error = capsys.readouterr().err.strip()
    assert "released models are not installed" in error and "--landmark-ckpt" in error and "\n" not in error
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
@needs_real_data()
def test_the_released_models_are_the_default_and_make_a_real_photo_talk(tmp_path):
    """`talkface generate --image --audio --out`, nothing else: the shipped models on a real photo and real speech."""
    from talkface.weights import released_checkpoints

    released_checkpoints()  # shipped with the package: a missing file fails here, not skips
    face, speech = REAL_DATA / "faces" / "deepface_img10.jpg", REAL_DATA / "audio" / "atvgnet_audio_sample.wav"
    out = tmp_path / "talking.mp4"
    result = run_cli(["generate", "--quiet", "--image", str(face), "--audio", str(speech), "--out", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    clip = read_video(out)
    assert abs(len(clip.frames) - math.ceil(len(read_audio(speech)) / 640)) <= 1
    found = sum(len(get_extractor("dlib").detect(frame)) > 0 for frame in clip.frames[::10])
    assert found == len(clip.frames[::10])  # a face in every sampled frame
