"""Bad and unusual inputs, one row each: exit 0 with a correct result, or exit 2 with one line.

Every row runs in a fresh copy of a small workspace of real media (face clips with speech-like
tones, a 16-bit face PNG, a float wav holding NaN, an image header claiming 200 megapixels, ...).
Around every run: every file of the workspace is hashed before and after (inputs byte-identical),
nothing appears outside the paths the row allows (no partial file, no stray folder), and the
command ends with exit 0, or exit 2 and exactly one stderr line holding the row's fragment.
Rows marked `subprocess=True` also run as `python -m talkface.cli ...` to prove no traceback
reaches a user. Most rows fail in the first second, before a model loads.

The rows are grouped per command: PREPARE_CASES, SAMPLE_CASES, INSPECT_CASES, MEDIA_CASES,
GENERATE_CASES, FIT_CASES; the placeholders a row may use are listed in `Workspace.placeholders`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from talkface.cli import main
from talkface.errors import MediaError, TalkfaceError
from tests.helpers.cli import data_overrides, run_cli
from tests.helpers.media_factory import astronaut_face, face_clip, numbered_frames, tone, write_mp4_file
from tests.helpers.real_data import REPO

# ---- the workspace --------------------------------------------------------------------------


def write_float_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """A 32-bit float wav (the only common format that can hold NaN or infinity)."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_f32le", rate=rate)
        stream.layout = "mono"
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares `width` x `height` RGB pixels but holds almost no data: readers must
    refuse it from its header (decoding it would need width * height * 3 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def grey16(rgb: np.ndarray) -> np.ndarray:
    """A 16-bit grey version of an RGB photo (full 0..65535 range)."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16)
    return grey * 257


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """Made once per module; every row gets its own copy (see `workspace`)."""
    root = tmp_path_factory.mktemp("bad_inputs_media")
    videos = root / "videos"
    face_clip(videos / "train" / "a.mp4", frames=30, seed=0)
    face_clip(videos / "train" / "b.mp4", frames=30, seed=1)
    face_clip(videos / "test" / "c.mp4", frames=30, seed=2)
    mixed = root / "mixed"  # one good clip, one whose audio covers 1.0 s of its 4.8 s
    mixed.mkdir()
    shutil.copy(videos / "train" / "a.mp4", mixed / "good.mp4")
    write_mp4_file(mixed / "short_audio.mp4", numbered_frames(120, size=64), tone(1.0, 16000))
    (root / "file.txt").write_text("a user's file\n")
    (root / "other").mkdir()
    (root / "other" / "notes.txt").write_text("a user's folder\n")
    images = root / "images"
    images.mkdir()
    face = astronaut_face(256)
    Image.fromarray(grey16(face)).save(images / "face16.png")
    Image.fromarray(face).convert("P").save(images / "palette.png")
    Image.fromarray(face).convert("LA").save(images / "grey_alpha.png")
    Image.fromarray(face).convert("CMYK").save(images / "cmyk.jpg")
    Image.fromarray(grey16(face).astype(np.int32)).save(images / "grey32.tif")
    Image.fromarray(grey16(face).astype(np.float32) / 65535).save(images / "float.tif")
    Image.fromarray(face).convert("1").save(images / "bilevel.png")
    write_png_header(images / "huge.png", 20000, 10000)
    audio = root / "audio"
    audio.mkdir()
    speech = tone(2.0, 16000)
    bad = speech.copy()
    bad[8000:8010] = np.nan
    write_float_wav(audio / "nan.wav", bad)
    bad = speech.copy()
    bad[100] = np.inf
    write_float_wav(audio / "inf.wav", bad)
    write_float_wav(audio / "clean_float.wav", speech)
    write_float_wav(audio / "speech.wav", tone(1.0, 16000))
    Image.fromarray(face).save(images / "face.png")
    (root / "folder.mp4").mkdir()  # a folder whose name looks like an output file
    _untrained_models(root / "models")
    (root / "heavy.yaml").write_text(
        "model:\n  init_args:\n    losses:\n      temporal:\n"
        "        class_path: temporal_residual\n        init_args: {weight: heavy}\n"
    )
    return root


def _untrained_models(folder: Path) -> None:
    """Small never-trained stage-1 and stage-2 checkpoints: the rows test inputs, not quality."""
    from lightning_modules import FaceGenModule, LandmarkModule
    from talkface.generation.checkpoints import save_untrained

    save_untrained(LandmarkModule(num_words=4, hidden=16, audio_dim=16, layers=1), folder / "landmark.ckpt")
    save_untrained(FaceGenModule(base_channels=8), folder / "generator.ckpt")


@dataclass
class Workspace:
    root: Path
    prepared: Path  # a small prepared dataset (read only) that the fit rows train on

    @property
    def placeholders(self) -> dict[str, str]:
        return {"ws": str(self.root), "prepared": str(self.prepared)}


@pytest.fixture
def workspace(media, tiny_prepared, tmp_path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(media, root)
    return Workspace(root, tiny_prepared)


def snapshot(root: Path) -> dict[str, str]:
    """Relative path → sha1 of every file, and "dir" for every folder, under `root`."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        found[key] = "dir" if path.is_dir() else hashlib.sha1(path.read_bytes()).hexdigest()
    return found


# ---- the rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # "{ws}" is the workspace folder
    code: int  # 0, or 2 with one stderr line
    message: str = ""  # a fragment of that line (exit 2), or of stdout (exit 0)
    creates: tuple[str, ...] = ()  # globs (relative to the workspace) of what may be new afterwards
    runs: int = 1  # the same command run again (resume): each run must end the same way
    check: Callable[[Path], None] | None = None  # more checks of a correct result (exit 0)
    subprocess: bool = False  # also run it as a real `python -m talkface.cli` process
    needs: str | None = None  # a path that must exist on this machine (e.g. /proc), else skipped
    skip: str | None = None  # a reason this row cannot run on this machine (e.g. it has a GPU)


PREPARE = ("prepare", "--workers", "1", "--no-progress")
DIR_ARGS = ("--src", "{ws}/videos", "--out", "{ws}/prepared", "--layout", "folder")


def _resumed_inside_source(root: Path) -> None:
    out = root / "videos" / "prepared"
    report = json.loads((out / "report.json").read_text())
    assert report["processed_this_run"] == 0 and report["sources"] == 3  # the output is not a source
    assert sum(json.loads((out / "meta.json").read_text())["splits"][s]["samples"] for s in report["samples"]) == 3
    assert (out / ".talkface-prepared").is_file()
    assert all((out / split / ".talkface-prepared").is_file() for split in report["samples"])


def _short_audio_skipped(root: Path) -> None:
    report = json.loads((root / "prepared" / "report.json").read_text())
    assert report["samples"] == {"train": 1}
    [skipped] = report["skipped"]
    assert skipped["id"] == "short_audio.mp4"
    assert "audio covers only 1.00 s of the 4.80 s video" in skipped["reason"]


PREPARE_CASES = [
    # Outputs never overlap inputs (the data loss: the user's train/ and test/ removed).
    Case(
        "out-is-src",
        (*PREPARE, "--src", "{ws}/videos", "--out", "{ws}/videos", "--layout", "folder"),
        2,
        "is the --src folder",
        subprocess=True,
    ),
    Case(
        "src-inside-out",
        (*PREPARE, "--src", "{ws}/videos/train", "--out", "{ws}/videos", "--layout", "folder"),
        2,
        "is inside --out",
    ),
    Case(
        "out-is-a-user-video-folder",
        (*PREPARE, "--src", "{ws}/videos", "--out", "{ws}/videos/train"),
        2,
        "already holds files that talkface prepare did not make",
    ),
    Case(
        "out-holds-user-files",
        (*PREPARE, "--src", "{ws}/videos", "--out", "{ws}/other"),
        2,
        "already holds files that talkface prepare did not make",
    ),
    # An --out inside --src is left out of the clip search: the re-run resumes (was "no lrw clips found").
    Case(
        "out-inside-src-resumes",
        (*PREPARE, "--src", "{ws}/videos", "--out", "{ws}/videos/prepared", "--split-ratios", "0.5,0.25,0.25"),
        0,
        creates=("videos/prepared", "videos/prepared/**"),
        runs=2,
        check=_resumed_inside_source,
    ),
    # Output paths, checked in the first second.
    Case(
        "out-is-a-file",
        (*PREPARE, "--src", "{ws}/videos", "--out", "{ws}/file.txt"),
        2,
        "is an existing file",
        subprocess=True,
    ),
    Case(
        "out-under-a-file",
        (*PREPARE, "--src", "{ws}/videos", "--out", "{ws}/file.txt/x"),
        2,
        "file.txt is a file, not a folder",
    ),
    Case(
        "out-unwritable",
        (*PREPARE, "--src", "{ws}/videos", "--out", "/proc/talkface-x"),
        2,
        "cannot be made",
        needs="/proc/self",
    ),
    Case("src-missing", (*PREPARE, "--src", "{ws}/nope", "--out", "{ws}/prepared"), 2, "source folder not found"),
    Case("src-is-a-file", (*PREPARE, "--src", "{ws}/file.txt", "--out", "{ws}/prepared"), 2, "--src"),
    # Numbers in range, before any model loads.
    Case("n-mels-0", (*PREPARE, *DIR_ARGS, "--n-mels", "0"), 2, "--n-mels must be at least 1", subprocess=True),
    Case("n-mels-negative", (*PREPARE, *DIR_ARGS, "--n-mels", "-5"), 2, "--n-mels must be at least 1"),
    Case("n-mels-too-many", (*PREPARE, *DIR_ARGS, "--n-mels", "500"), 2, "--n-mels must be between 1 and 114"),
    Case(
        "n-mels-below-mfcc",
        (*PREPARE, *DIR_ARGS, "--features", "mfcc", "--n-mels", "8"),
        2,
        "--n-mels must be at least 13",
    ),
    Case("context-even", (*PREPARE, *DIR_ARGS, "--context", "4"), 2, "--context must be a positive odd number"),
    Case("context-0", (*PREPARE, *DIR_ARGS, "--context", "0"), 2, "--context must be a positive odd number"),
    Case("workers-0", ("prepare", *DIR_ARGS, "--workers", "0"), 2, "--workers must be at least 1"),
    Case("workers-huge", ("prepare", *DIR_ARGS, "--workers", "100000"), 2, "per CPU core"),
    Case("window-negative", (*PREPARE, *DIR_ARGS, "--window", "-1"), 2, "--window must be >= 0"),
    Case("stride-0", (*PREPARE, *DIR_ARGS, "--stride", "0"), 2, "--stride must be at least 1"),
    Case("ratios-nan", (*PREPARE, *DIR_ARGS, "--split-ratios", "nan,0,1"), 2, "--split-ratios must be three numbers"),
    Case("ratios-negative", (*PREPARE, *DIR_ARGS, "--split-ratios", "0.9,0.9,-0.8"), 2, "--split-ratios must be three"),
    Case("ratios-two", (*PREPARE, *DIR_ARGS, "--split-ratios", "0.5,0.5"), 2, "--split-ratios needs three numbers"),
    Case("ratios-words", (*PREPARE, *DIR_ARGS, "--split-ratios", "a,b,c"), 2, "--split-ratios must be three numbers"),
    Case("splits-empty", (*PREPARE, *DIR_ARGS, "--splits", ","), 2, "--splits is empty"),
    Case("identities-missing", (*PREPARE, *DIR_ARGS, "--identities", "{ws}/nope.csv"), 2, "nope.csv: no such file"),
    Case(
        "identities-garbled",
        (*PREPARE, *DIR_ARGS, "--identities", "{ws}/file.txt"),
        2,
        "not an identity table (no file, identity, split column",
        subprocess=True,
    ),
    Case("splits-unknown", (*PREPARE, *DIR_ARGS, "--splits", "train,dev"), 2, "unknown split(s) dev"),
    Case("crop-64", (*PREPARE, *DIR_ARGS, "--crop", "64"), 2, "argument --crop: invalid choice"),
    Case("backend-fan", (*PREPARE, *DIR_ARGS, "--backend", "fan"), 2, "argument --backend: invalid choice"),
    # A clip whose audio covers 1.0 s of its 4.8 s is skipped, with the reason in report.json.
    Case(
        "short-audio-skipped",
        (*PREPARE, "--src", "{ws}/mixed", "--out", "{ws}/prepared", "--layout", "folder", "--split-ratios", "1,0,0"),
        0,
        creates=("prepared", "prepared/**"),
        check=_short_audio_skipped,
    ),
]

SAMPLE = ("sample", "--words", "ABOUT", "--train", "1", "--val", "0", "--test", "0", "--workers", "1", "--quiet")

SAMPLE_CASES = [
    Case("out-is-a-file", (*SAMPLE, "--out", "{ws}/file.txt"), 2, "is an existing file", subprocess=True),
    Case("out-under-a-file", (*SAMPLE, "--out", "{ws}/file.txt/lrw"), 2, "file.txt is a file, not a folder"),
    Case("out-unwritable", (*SAMPLE, "--out", "/proc/talkface-x"), 2, "cannot be made", needs="/proc/self"),
    # A folder of the user's clips (mp4 without .txt beside them would be overwritten).
    Case(
        "out-holds-user-files",
        (*SAMPLE, "--out", "{ws}/videos/train"),
        2,
        "already holds files that talkface sample did not make",
    ),
    Case("seed-negative", (*SAMPLE, "--out", "{ws}/lrw", "--seed", "-1"), 2, "--seed must be >= 0"),
    Case("workers-0", ("sample", "--out", "{ws}/lrw", "--workers", "0"), 2, "--workers must be at least 1"),
    Case("workers-huge", ("sample", "--out", "{ws}/lrw", "--workers", "100000"), 2, "per CPU core"),
    Case("num-words-0", ("sample", "--out", "{ws}/lrw", "--num-words", "0", "--quiet"), 2, "between 1 and 500"),
    Case("clips-per-word-0", ("sample", "--out", "{ws}/lrw", "--clips-per-word", "0", "--quiet"), 2, "at least 1"),
    Case("train-negative", (*SAMPLE, "--out", "{ws}/lrw", "--train", "-1"), 2, "must be >= 0"),
    Case("words-empty", ("sample", "--out", "{ws}/lrw", "--words", ",", "--quiet"), 2, "--words is empty"),
    Case("faces-missing", (*SAMPLE, "--out", "{ws}/lrw", "--faces", "{ws}/nope"), 2, "does not exist"),
]

INSPECT_CASES = [
    # The same backend names as generate's (get_extractor's canonical names).
    Case(
        "backend-fan",
        ("inspect", "--backend", "fan", "--face", "{ws}/images/face16.png"),
        2,
        "invalid choice: 'fan' (choose from 'dlib', 'face_alignment')",
        subprocess=True,
    ),
    Case("missing-file", ("inspect", "{ws}/nope.mp4"), 2, "no such file"),
    Case("a-folder", ("inspect", "{ws}/videos"), 2, "is a directory"),
    Case("nan-audio", ("inspect", "{ws}/audio/nan.wav"), 2, "NaN or infinite samples", subprocess=True),
    Case("inf-audio", ("inspect", "{ws}/audio/inf.wav"), 2, "NaN or infinite samples"),
    Case("clean-float-audio", ("inspect", "{ws}/audio/clean_float.wav"), 0, "audio 2.000 s"),
    Case("huge-image", ("inspect", "{ws}/images/huge.png"), 2, "20000x10000 pixels (200 megapixels)", subprocess=True),
    Case("grey16-face-found", ("inspect", "--face", "{ws}/images/face16.png"), 0, "face at x"),
    Case("short-audio-video", ("inspect", "{ws}/mixed/short_audio.mp4"), 0, "120 frames at 25 fps"),
]

# Images of every mode and depth read as 8-bit RGB with the face where it is (pixel values are
# checked in the unit tests below; the 16-bit PNG is INSPECT_CASES' grey16-face-found).
MEDIA_CASES = [
    *(
        Case(f"image-{name}", ("inspect", "--face", f"{{ws}}/images/{name}"), 0, "image 256x256, face at x")
        for name in ("palette.png", "grey_alpha.png", "cmyk.jpg", "grey32.tif", "float.tif")
    ),
    Case("image-bilevel.png", ("inspect", "{ws}/images/bilevel.png"), 0, "image 256x256"),
]

GENERATE = (
    "generate",
    "--landmark-ckpt",
    "{ws}/models/landmark.ckpt",
    "--generator-ckpt",
    "{ws}/models/generator.ckpt",
    "--quiet",
)
PHOTO, SPEECH = ("--image", "{ws}/images/face.png"), ("--audio", "{ws}/audio/speech.wav")
OUT = ("--out", "{ws}/talking.mp4")


def _video_of_the_speech(root: Path) -> None:
    from talkface.media import read_video

    clip = read_video(root / "talking.mp4")
    assert len(clip.frames) == 25 and clip.frames.shape[1:] == (256, 256, 3)


def _has_cuda() -> str | None:
    import torch

    return (
        "this machine has a CUDA GPU: the row checks the message for a machine without one"
        if torch.cuda.is_available()
        else None
    )


GENERATE_CASES = [
    # Outputs never overwrite inputs (was: the input video overwritten).
    Case(
        "out-is-the-audio",
        (*GENERATE, *PHOTO, "--audio", "{ws}/videos/train/a.mp4", "--out", "{ws}/videos/train/a.mp4"),
        2,
        "is the --audio file; it would be overwritten",
        subprocess=True,
    ),
    Case(
        "out-is-the-audio-by-another-path",
        (*GENERATE, *PHOTO, "--audio", "{ws}/videos/train/a.mp4", "--out", "{ws}/videos/test/../train/a.mp4"),
        2,
        "is the --audio file",
    ),
    # Output paths, in the first second.
    Case("out-mov", (*GENERATE, *PHOTO, *SPEECH, "--out", "{ws}/o.mov"), 2, "give a name ending in .mp4"),
    Case(
        "out-is-a-folder", (*GENERATE, *PHOTO, *SPEECH, "--out", "{ws}/folder.mp4"), 2, "is a folder", subprocess=True
    ),
    Case(
        "out-under-a-file",
        (*GENERATE, *PHOTO, *SPEECH, "--out", "{ws}/file.txt/x.mp4"),
        2,
        "file.txt is a file, not a folder",
    ),
    Case(
        "out-in-proc", (*GENERATE, *PHOTO, *SPEECH, "--out", "/proc/x.mp4"), 2, "cannot be written", needs="/proc/self"
    ),
    # Option ranges.
    Case("feather-nan", (*GENERATE, *PHOTO, *SPEECH, *OUT, "--feather", "nan"), 2, "--feather nan: give a fraction"),
    Case("feather-5", (*GENERATE, *PHOTO, *SPEECH, *OUT, "--feather", "5"), 2, "--feather 5.0: give a fraction"),
    Case("feather-negative", (*GENERATE, *PHOTO, *SPEECH, *OUT, "--feather", "-1"), 2, "--feather -1.0"),
    Case("max-side-0", (*GENERATE, *PHOTO, *SPEECH, *OUT, "--max-side", "0"), 2, "--max-side 0: give a size"),
    Case("max-side-negative", (*GENERATE, *PHOTO, *SPEECH, *OUT, "--max-side", "-5"), 2, "--max-side -5"),
    Case("device-bogus", (*GENERATE, *PHOTO, *SPEECH, *OUT, "--device", "bogus"), 2, "not a device", subprocess=True),
    Case("backend-fan", (*GENERATE, *PHOTO, *SPEECH, *OUT, "--backend", "fan"), 2, "invalid choice: 'fan'"),
    Case("image-missing", (*GENERATE, "--image", "{ws}/nope.png", *SPEECH, *OUT), 2, "nope.png: no such file"),
    Case(
        "ckpt-missing",
        (*GENERATE, *PHOTO, *SPEECH, *OUT, "--landmark-ckpt", "{ws}/x.ckpt"),
        2,
        "no such checkpoint file",
    ),
    # Inputs the readers refuse, before any model loads or output exists.
    Case(
        "nan-audio", (*GENERATE, *PHOTO, "--audio", "{ws}/audio/nan.wav", *OUT), 2, "NaN or infinite", subprocess=True
    ),
    Case(
        "huge-image",
        (*GENERATE, "--image", "{ws}/images/huge.png", *SPEECH, *OUT),
        2,
        "(200 megapixels)",
        subprocess=True,
    ),
    # A 16-bit grey photo: read as the grey photo it is, a face found, a video made.
    Case(
        "grey16-photo",
        (*GENERATE, "--image", "{ws}/images/face16.png", *SPEECH, *OUT),
        0,
        "wrote",
        creates=("talking.mp4",),
        check=_video_of_the_speech,
    ),
]
GENERATE_CASES.append(
    Case(
        "device-cuda-without-gpu",
        (*GENERATE, *PHOTO, *SPEECH, *OUT, "--device", "cuda"),
        2,
        "this machine has no CUDA GPU",
        skip=_has_cuda(),
    )
)

FIT = (
    "fit",
    "-c",
    "landmark/sample",
    *data_overrides("{prepared}", "{ws}/runs"),
    "--trainer.max_epochs",
    "1",
    "--model.init_args.hidden",
    "16",
    "--model.init_args.audio_dim",
    "16",
)

FIT_CASES = [
    Case("max-epochs-negative", (*FIT, "--trainer.max_epochs", "-5"), 2, "trainer.max_epochs (-1: no limit) must be"),
    Case("lr-negative", (*FIT, "--model.init_args.lr", "-0.1"), 2, "model.init_args.lr must be a number above 0"),
    Case(
        "loss-weight-text",
        (*FIT, "-c", "{ws}/heavy.yaml"),
        2,
        "'temporal' (temporal_residual): weight must be a number",
    ),
    Case(
        "loss-weight-override-text",
        (*FIT, "--model.init_args.losses.temporal.init_args.weight", "heavy"),
        2,
        "weight must be a number, got 'heavy'",
    ),
    Case("batch-size-0", (*FIT, "--data.batch_size", "0"), 2, "data.batch_size must be a whole number of at least 1"),
    Case("num-workers-negative", (*FIT, "--data.num_workers", "-1"), 2, "data.num_workers must be a whole number"),
    Case(
        "batch-larger-than-the-data",
        (*FIT, "--data.batch_size", "64"),
        2,
        "is more than the 16 training samples",
    ),
    Case("ckpt-missing", (*FIT, "--ckpt_path", "{ws}/nope.ckpt"), 2, "no such checkpoint file", subprocess=True),
    Case(
        "ckpt-of-the-other-stage",
        (*FIT, "--ckpt_path", "{ws}/models/generator.ckpt"),
        2,
        "this is a stage-2 (face generator) checkpoint, but the config is for a stage-1",
        subprocess=True,
    ),
    Case(
        "accelerator-gpu-without-gpu",
        (*FIT, "--trainer.accelerator", "gpu"),
        2,
        "on a machine without a GPU use --trainer.accelerator cpu",
        skip=_has_cuda(),
    ),
    Case("unknown-recipe", ("fit", "-c", "landmark/nope"), 2, "no such config file or packaged recipe"),
]

ALL_CASES = (
    [("prepare", c) for c in PREPARE_CASES]
    + [("sample", c) for c in SAMPLE_CASES]
    + [("inspect", c) for c in INSPECT_CASES]
    + [("media", c) for c in MEDIA_CASES]
    + [("generate", c) for c in GENERATE_CASES]
    + [("fit", c) for c in FIT_CASES]
)


def _skip_if_it_cannot_run_here(case: Case) -> None:
    if case.needs and not Path(case.needs).exists():
        pytest.skip(f"{case.needs} does not exist on this machine")
    if case.skip:
        pytest.skip(case.skip)


def _run_in_process(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check_outcome(case: Case, code: int, out: str, err: str) -> None:
    assert "Traceback" not in err, err
    assert code == case.code, f"exit {code}, expected {case.code}; stderr:\n{err}"
    if case.code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
        assert case.message in lines[0], lines[0]
    elif case.message:
        assert case.message in out, out


def _check_files(case: Case, before: dict[str, str], after: dict[str, str]) -> None:
    changed = sorted(p for p, digest in before.items() if after.get(p) != digest)
    assert not changed, f"inputs changed or removed: {changed}"
    new = sorted(set(after) - set(before))
    unexpected = [p for p in new if not any(_allowed(p, pattern) for pattern in case.creates)]
    assert not unexpected, f"unexpected new files: {unexpected}"
    assert not [p for p in new if "partial" in Path(p).name], f"partial files left: {new}"


def _allowed(path: str, pattern: str) -> bool:
    """`folder/**`: anything below folder; otherwise the path itself (fnmatch wildcards)."""
    if pattern.endswith("/**"):
        return path.startswith(pattern[:-2])
    return fnmatch.fnmatch(path, pattern)


@pytest.mark.parametrize(("command", "case"), ALL_CASES, ids=[f"{cmd}-{c.id}" for cmd, c in ALL_CASES])
def test_bad_input(command, case: Case, workspace: Workspace, capsys):
    _skip_if_it_cannot_run_here(case)
    argv = [a.format(**workspace.placeholders) for a in case.argv]
    before = snapshot(workspace.root)
    for _ in range(case.runs):
        _check_outcome(case, *_run_in_process(argv, capsys))
    _check_files(case, before, snapshot(workspace.root))
    if case.check is not None:
        case.check(workspace.root)


SUBPROCESS_CASES = [(cmd, c) for cmd, c in ALL_CASES if c.subprocess]


@pytest.mark.parametrize(("command", "case"), SUBPROCESS_CASES, ids=[f"{cmd}-{c.id}" for cmd, c in SUBPROCESS_CASES])
def test_bad_input_from_a_real_process(command, case: Case, workspace: Workspace):
    _skip_if_it_cannot_run_here(case)
    argv = [a.format(**workspace.placeholders) for a in case.argv]
    before = snapshot(workspace.root)
    result = run_cli(argv, timeout=120)
    _check_outcome(case, result.returncode, result.stdout, result.stderr)
    _check_files(case, before, snapshot(workspace.root))


def test_a_wrong_number_is_reported_before_anything_heavy_loads(workspace: Workspace):
    """The checks run before a landmark model, litdata or the preparation engine is imported."""
    heavy = ("dlib", "litdata", "talkface.prepare.runner", "talkface.sample.builder")
    commands = [
        ["prepare", "--src", str(workspace.root / "videos"), "--out", str(workspace.root / "p"), "--n-mels", "0"],
        ["sample", "--out", str(workspace.root / "lrw"), "--seed", "-1"],
    ]
    for argv in commands:
        script = (
            "import sys; from talkface.cli import main; code = main(sys.argv[1:]); "
            f"print(code, [m for m in {heavy!r} if m in sys.modules])"
        )
        result = subprocess.run(
            [sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert result.stdout.strip() == "2 []", (result.stdout, result.stderr)


# ---- prepare: what it may remove -------------------------------------------------------------


def test_a_split_folder_prepare_did_not_make_is_never_removed(workspace: Workspace, capsys):
    """An --out of prepare's own (marker) in which the user put a train/ folder: refused, kept."""
    out = workspace.root / "prepared"
    out.mkdir()
    (out / ".talkface-prepared").write_text("made by talkface prepare\n")
    (out / "train").mkdir()
    shutil.copy(workspace.root / "videos" / "train" / "a.mp4", out / "train" / "mine.mp4")
    before = snapshot(workspace.root)
    code, _, err = _run_in_process(
        [
            *PREPARE,
            "--src",
            str(workspace.root / "videos"),
            "--out",
            str(out),
            "--split-ratios",
            "1,0,0",
            "--layout",
            "folder",
        ],
        capsys,
    )
    assert code == 2 and err.strip() == (
        f"talkface prepare: error: {out / 'train'} exists and was not made by talkface prepare; choose another --out"
    )
    assert snapshot(workspace.root) == before


def test_a_dataset_from_before_the_marker_is_still_resumed(workspace: Workspace):
    """An <out> with work/settings.json and marker-less split folders (light/ + full/ litdata
    folders only) counts as prepare's own: it is resumed and its splits replaced."""
    from talkface.prepare import PrepareSettings, prepare_dataset

    src, out = workspace.root / "mixed", workspace.root / "prepared"
    settings = PrepareSettings(src=src, out=out, layout="folder", split_ratios=(1, 0, 0), workers=1, progress=False)
    prepare_dataset(settings)
    for marker in out.rglob(".talkface-prepared"):
        marker.unlink()  # as an older version left it
    report = prepare_dataset(settings)
    assert report.samples == {"train": 1} and report.processed_now == 0
    assert (out / ".talkface-prepared").is_file() and (out / "train" / ".talkface-prepared").is_file()


# ---- media readers ---------------------------------------------------------------------------


def test_a_16_bit_grey_photo_of_a_real_face_is_read_and_its_face_found(real_data, tmp_path):
    """16-bit grey PNGs used to read as a white image ("no face found")."""
    from talkface.faces import get_extractor
    from talkface.media import read_image

    photo = real_data / "faces" / "makeittalk_obama.jpg"
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    Image.fromarray(grey16(rgb)).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    image = read_image(tmp_path / "grey16.png")
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    assert image.dtype == np.uint8 and image.shape == (*expected.shape, 3)
    assert np.abs(image[..., 0].astype(int) - expected).max() <= 1  # the grey photo, not white
    points = get_extractor("dlib").landmarks(image, name="grey16.png")
    reference = get_extractor("dlib").landmarks(rgb, name=photo.name)
    assert np.abs(points - reference).mean() < 3.0  # the same face, found where it is in colour


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("face16.png", 1),
        ("grey32.tif", 1),
        ("float.tif", 1),
        ("grey_alpha.png", 0),
        ("palette.png", 40),
        ("cmyk.jpg", 12),
    ],
)
def test_images_of_any_mode_and_depth_read_as_8_bit_rgb(media, name, tolerance):
    from talkface.media import read_image

    face = astronaut_face(256)
    image = read_image(media / "images" / name)
    assert image.dtype == np.uint8 and image.shape == (256, 256, 3)
    grey_source = name.split(".")[0] in ("face16", "grey32", "float", "grey_alpha")
    expected = np.repeat(np.asarray(Image.fromarray(face).convert("L"))[..., None], 3, axis=2) if grey_source else face
    assert np.abs(image.astype(int) - expected.astype(int)).mean() <= tolerance


def test_a_huge_image_is_refused_from_its_header_with_its_size(media):
    from talkface.media import read_image

    with pytest.raises(MediaError, match=r"20000x10000 pixels \(200 megapixels\) is too large"):
        read_image(media / "images" / "huge.png")
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard is back in place afterwards


def test_a_huge_jpeg_is_decoded_at_a_reduced_scale(media, tmp_path, monkeypatch):
    """Above the limit a JPEG is decoded at 1/2, 1/4 or 1/8 scale by the decoder (never at full size)."""
    from talkface.media import image_io, read_image

    Image.fromarray(astronaut_face(256)).save(tmp_path / "face.jpg", quality=95)
    monkeypatch.setattr(image_io, "MAX_PIXELS", 100 * 100)  # 256² is "huge" now
    image = read_image(tmp_path / "face.jpg")
    assert image.shape == (64, 64, 3)  # 1/4 scale: the first that fits under 10 000 pixels
    small = np.asarray(Image.fromarray(astronaut_face(256)).resize((64, 64), Image.Resampling.BOX))
    assert np.abs(image.astype(int) - small.astype(int)).mean() < 12
    monkeypatch.setattr(image_io, "MAX_PIXELS", 10)  # beyond 1/8 scale too: refused
    with pytest.raises(MediaError, match="256x256 pixels"):
        read_image(tmp_path / "face.jpg")


def test_nan_or_infinite_audio_is_refused_by_every_reader(media):
    from talkface.media import read_audio
    from talkface.media.audio_stream import probe_audio, stream_audio

    for name in ("nan.wav", "inf.wav"):
        path = media / "audio" / name
        for read in (read_audio, probe_audio, lambda p: list(stream_audio(p))):
            with pytest.raises(MediaError, match="NaN or infinite samples") as error:
                read(path)
            assert name in str(error.value) and "\n" not in str(error.value)
    assert len(read_audio(media / "audio" / "clean_float.wav")) == 32000


def test_audio_missing_from_a_clip_is_tolerated_up_to_a_tenth_or_two_frames():
    from talkface.prepare.clip_pipeline import SkipClip, check_audio_covers_video

    check_audio_covers_video(int(0.9 * 120 * 640), 120, 640, 16000)  # 10 % missing: padded
    check_audio_covers_video(28 * 640, 30, 640, 16000)  # 2 frames missing of a short clip: padded
    with pytest.raises(SkipClip, match=r"covers only 1.00 s of the 4.80 s video \(21 %\)"):
        check_audio_covers_video(16000, 120, 640, 16000)
    with pytest.raises(SkipClip):
        check_audio_covers_video(26 * 640, 30, 640, 16000)  # 4 of 30 frames missing: more than a tenth


def test_feature_settings_are_checked_where_they_are_made():
    from talkface.audio import FeatureConfig
    from talkface.audio.features import max_mel_bands

    assert max_mel_bands(512, 16000) == 114
    FeatureConfig(n_mels=114)
    for bad in (dict(n_mels=0), dict(n_mels=115), dict(kind="mfcc", n_mels=12), dict(context=2)):
        with pytest.raises(TalkfaceError):
            FeatureConfig(**bad)


# ---- generate: signals and stale partial files -----------------------------------------------


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_generate(root: Path, seconds: float) -> subprocess.Popen:
    write_float_wav(root / "long.wav", tone(seconds, 16000))
    argv = [
        *(a.format(ws=root) for a in GENERATE),
        *(a.format(ws=root) for a in PHOTO),
        "--audio",
        str(root / "long.wav"),
        "--out",
        str(root / "talking.mp4"),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "talkface.cli", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A background job (as CI may be) inherits SIGINT ignored, and Python keeps ignoring it:
        # give the child the default disposition, as a terminal gives a program for Ctrl-C.
        preexec_fn=_default_sigint,
    )


def _partials(root: Path) -> list[Path]:
    return sorted(root.glob(".talking.partial-*.mp4"))


@pytest.mark.slow
def test_sigterm_during_generate_leaves_no_partial_file(workspace: Workspace):
    root = workspace.root
    process = _start_generate(root, 60.0)
    deadline = time.monotonic() + 180
    while not _partials(root):  # frames are being encoded into the partial file
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "generation did not start"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert err.strip().splitlines() == ["talkface generate: terminated; nothing was left half-written"]
    assert not (root / "talking.mp4").exists() and not _partials(root)


@pytest.mark.slow
def test_ctrl_c_during_start_up_is_one_line(workspace: Workspace):
    root = workspace.root
    process = _start_generate(root, 60.0)
    time.sleep(1.0)  # importing torch, loading the models
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    # A shell reads both as 130. Under `python -m`, CPython 3.11 ends the process by SIGINT, after
    # our handler and its clean-up have run, when the interrupt landed inside an `exec` of source
    # text (dataclasses and namedtuple build methods that way while torch is being imported); the
    # `talkface` console script exits 130 either way.
    assert process.returncode in (130, -signal.SIGINT), err
    assert err.strip().splitlines() == ["talkface generate: interrupted; nothing was left half-written"]
    assert not (root / "talking.mp4").exists() and not _partials(root)


def test_a_dead_writers_partial_file_is_cleaned_and_a_live_ones_kept(tmp_path):
    from talkface.media.mp4_writer import partial_path, write_mp4

    out = tmp_path / "talking.mp4"
    dead = partial_path(out, 4_194_305)  # above Linux's largest pid: no such process
    alive = partial_path(out, os.getppid())
    other = partial_path(tmp_path / "other.mp4", 4_194_305)  # another output's: not ours to judge
    for path in (dead, alive, other):
        path.write_bytes(b"half a video")
    write_mp4(out, np.zeros((2, 16, 16, 3), np.uint8))
    assert out.is_file() and not dead.exists()
    assert alive.read_bytes() == b"half a video" and other.exists()
