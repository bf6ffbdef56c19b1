"""The whole framework in one command, from nothing: sample → prepare → train both stages → test → video.

It ends with two videos of the same photo and speech: one from the models it just trained on the
synthetic sample, one from the released models (trained on real faces) that ship with talkface.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from talkface.commands.runs import newest, read_test_metrics, run_talkface
from talkface.errors import TalkfaceError
from talkface.recipes import find_recipe

SENTENCE = "Talking faces from landmarks. About the family, the government and the people, every single day."


@dataclass(frozen=True)
class DemoPlan:
    """How much of everything: the full demo fits 15 minutes on 2 CPU cores, --quick 3."""

    sample: dict
    landmark_epochs: int
    generator_epochs: int
    generator_time: str  # Lightning max_time, DD:HH:MM:SS
    eval_frame_stride: int
    generator_val_every: int  # epochs; a validation must happen within generator_time for a best checkpoint


FULL = DemoPlan({"num_words": 20, "train": 12, "val": 3, "test": 3, "seed": 0}, 60, 100, "00:00:06:00", 4, 3)
QUICK = DemoPlan({"num_words": 4, "train": 4, "val": 2, "test": 2, "seed": 0}, 30, 20, "00:00:01:15", 8, 4)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("talkface_demo"),
        help="folder for everything the demo makes (default talkface_demo)",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller sample and shorter training (about 3 minutes)")
    parser.add_argument("--image", help="make the final video from this photo instead of the sample's face")
    parser.add_argument("--audio", help="make the final video from this speech instead of a synthesised sentence")


def run(args: argparse.Namespace) -> int:
    from talkface.prepare import PrepareSettings, prepare_dataset
    from talkface.sample import build_sample

    plan = QUICK if args.quick else FULL
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    steps = Steps(8)
    raw, prepared = out / "data" / "sample", out / "data" / "prepared"
    counts = {split: plan.sample[split] for split in ("train", "val", "test")}

    steps.begin(f"building the built-in sample: {plan.sample['num_words']} words x {sum(counts.values())} clips")
    build_sample(raw, num_words=plan.sample["num_words"], splits=counts, seed=plan.sample["seed"])
    steps.begin("preparing it: landmarks, aligned crops, audio features")
    prepare_dataset(PrepareSettings(src=raw, out=prepared))

    data = [
        "--data.data_dir",
        str(prepared),
        "--data.raw_dir",
        "null",
        "--data.sample",
        "null",
        "--data.num_workers",
        "1",
    ]
    stages = {
        "landmark": (
            "stage 1 (audio → landmarks)",
            [
                "--trainer.max_epochs",
                str(plan.landmark_epochs),
                "--model.init_args.lr_decay_epochs",
                str(plan.landmark_epochs),
                "--trainer.check_val_every_n_epoch",
                str(max(plan.landmark_epochs // 4, 1)),
            ],
        ),
        "generator": (
            f"stage 2 (landmarks → face, at most {_duration(plan.generator_time)})",
            [
                "--trainer.max_epochs",
                str(plan.generator_epochs),
                "--trainer.max_time",
                plan.generator_time,
                "--model.init_args.eval_frame_stride",
                str(plan.eval_frame_stride),
                "--trainer.check_val_every_n_epoch",
                str(plan.generator_val_every),
            ],
        ),
    }
    metrics, checkpoints = {}, {}
    for stage, (title, extra) in stages.items():
        root = out / "runs" / stage
        common = [
            "-c",
            str(find_recipe(f"{stage}/sample")),
            *data,
            "--trainer.default_root_dir",
            str(root),
            "--trainer.enable_progress_bar",
            "false",
            *extra,
        ]
        steps.begin(f"training {title}")
        run_talkface(["fit", *common])
        checkpoints[stage] = best_or_last(root)
        steps.begin(f"testing {title.split(' (')[0]} on {plan.sample['num_words'] * counts['test']} held-out clips")
        test_dir = root / "test"
        run_talkface(
            [
                "test",
                *common,
                "--ckpt_path",
                str(checkpoints[stage]),
                "--trainer.logger",
                "lightning.pytorch.loggers.CSVLogger",
                "--trainer.logger.init_args.save_dir",
                str(test_dir),
            ]
        )
        metrics[stage] = read_test_metrics(test_dir)
    (out / "demo_metrics.json").write_text(json.dumps(metrics, indent=2))

    steps.begin("generating a talking-face video from a photo and speech")
    image, audio = _inputs(args, out)
    from talkface.generation import generate

    video = generate(image, audio, checkpoints["landmark"], checkpoints["generator"], out / "talking.mp4")
    steps.begin("the same photo and speech with the released models (trained on real faces)")
    released = _released_video(image, audio, out / "talking_released.mp4")
    print(summary(out, checkpoints, metrics, video, time.perf_counter() - started, released))
    return 0


def _released_video(image: Path, audio: Path, out: Path):
    """The released models' video, or the one-line reason there is none (an install without them)."""
    from talkface.generation import generate
    from talkface.weights import released_checkpoints

    try:
        landmark, generator = released_checkpoints()
    except TalkfaceError as error:
        return str(error)
    return generate(image, audio, landmark, generator, out)


class Steps:
    """[n/N] progress lines with the time each step took."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def begin(self, what: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        print(f"talkface demo: [{self.done}/{self.total}] {what} (at {elapsed / 60:.1f} min)", flush=True)


def _inputs(args: argparse.Namespace, out: Path) -> tuple[Path, Path]:
    """The photo and speech of the final video: the user's, or the sample's face and a spoken sentence."""
    image = Path(args.image) if args.image else out / "face.png"
    audio = Path(args.audio) if args.audio else out / "speech.wav"
    if not args.image:  # the photo the built-in sample's face comes from
        import cv2
        from skimage import data

        cv2.imwrite(str(image), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    if not args.audio:
        from talkface import SAMPLE_RATE
        from talkface.media.wav_writer import write_wav
        from talkface.sample.speech import synthesize

        speech = synthesize(SENTENCE, voice="en-us+m3", rate=150)
        write_wav(audio, speech.audio, SAMPLE_RATE)
    for path in (image, audio):
        if not path.is_file():
            raise TalkfaceError(f"{path}: no such file")
    return image, audio


def best_or_last(root: Path) -> Path:
    """The best checkpoint by the recipe's monitored metric; the last one if time ran out before any validation."""
    try:
        return newest(root, "best-*.ckpt")
    except TalkfaceError:
        return newest(root, "last.ckpt")


def summary(out: Path, checkpoints: dict, metrics: dict, video, seconds: float, released=None) -> str:
    one, two = metrics["landmark"], metrics["generator"]

    def value(table: dict, key: str, scale: float = 1.0, digits: int = 3) -> str:
        return f"{table[key] * scale:.{digits}f}" if key in table else "–"

    return "\n".join(
        [
            f"talkface demo: done in {seconds / 60:.1f} min; everything is in {out}/",
            f"  video:              {video.path} ({video.frames} frames, {video.audio_seconds:.1f} s, {video.fps:.0f} frames/s to make)",
            f"  released models:    {_released_line(released)}",
            f"  stage-1 checkpoint: {checkpoints['landmark']}",
            f"  stage-2 checkpoint: {checkpoints['generator']}",
            "  test metrics (held-out clips; lower LMD is better):",
            f"    stage 1: mouth LMD {value(one, 'test/lmd_mouth')} px (identity held still: {value(one, 'test/still_identity/lmd_mouth')}), "
            f"word accuracy {value(one, 'test/word_acc_predicted', 100, 1)} %",
            f"    stage 2: mouth PSNR {value(two, 'test/mouth_psnr', 1, 2)} dB (copy the reference: {value(two, 'test/copy_reference/mouth_psnr', 1, 2)}), "
            f"re-detected mouth LMD {value(two, 'test/lmd_mouth')} px (copy the reference: {value(two, 'test/copy_reference/lmd_mouth')})",
            f"  next: talkface generate --image YOUR_PHOTO --audio YOUR_SPEECH --landmark-ckpt {checkpoints['landmark']} "
            f"--generator-ckpt {checkpoints['generator']} --out talking.mp4",
        ]
    )


def _released_line(released) -> str:
    if released is None or isinstance(released, str):
        return f"no video ({released or 'not run'})"
    return f"{released.path} (the same photo and speech; models trained on real faces, see MODEL_CARD.md)"


def _duration(max_time: str) -> str:
    days, hours, minutes, seconds = (int(part) for part in max_time.split(":"))
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return f"{total // 60} min" if total % 60 == 0 else f"{total} s"
