"""Run the test step of every checkpoint on one prepared split, in this process, and collect rows.

Each checkpoint is rebuilt with `load_stage` and tested by a plain Lightning Trainer (no logger,
no progress bar) on an `LRWDataModule` that streams just the fields the model asks for. The
baselines are logged by every test run on the same clips (stage 1: identity landmarks held
still; stage 2: the reference frame copied), so they are taken from the first run of each stage.
Stage 2 scores every `frame_stride`-th frame for all generators alike, so their rows, the
copy-reference baseline and the end-to-end rows are measured on the very same frames. The
real-face metrics exist only end to end (stage 2's own test does not score them): the end-to-end
run scores them for the copy-reference baseline too, and they join stage 2's baseline row there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talkface.errors import TalkfaceError
from talkface.evaluation.report import Row

LANDMARK_BASELINE = "identity landmarks held still (baseline)"
REAL_VIDEO = "real video (baseline)"
FRAME_BASELINE = "copy the reference frame (baseline)"
# The copied frame is the photo itself: these are perfect by construction (the report marks them).
TRIVIAL_FOR_BASELINE = ("upper_face_psnr", "sharpness_ratio")


@dataclass(frozen=True)
class Checkpoint:
    name: str  # the row's name in the tables
    path: Path
    option: str  # the option that named it, for error messages


@dataclass
class Settings:
    data_dir: Path
    split: str = "test"
    batch_size: int = 8
    num_workers: int = 0
    frame_stride: int = 4
    limit_batches: int | None = None  # None: the whole split
    accelerator: str = "auto"


@dataclass
class Evaluation:
    tables: dict[str, list[Row]] = field(
        default_factory=lambda: {"stage1": [], "stage2": [], "end_to_end": [], "lip_sync": []}
    )
    notes: list[str] = field(default_factory=list)


# ---- naming checkpoints on the command line
def parse_checkpoint(value: str, option: str) -> Checkpoint:
    """`NAME=CKPT` or `CKPT`; CKPT is a .ckpt file or a run folder (its best checkpoint).

    Lightning's own file names contain '=' (best-epoch=59.ckpt), so a value that exists as a path
    is taken whole; otherwise the name is what comes before the first '='.
    """
    name = None
    path = Path(value)
    if not path.exists() and "=" in value:
        name, _, rest = value.partition("=")
        name, path = name.strip(), Path(rest)
        if not name:
            raise TalkfaceError(f"{option} {value}: the name before '=' is empty; use {option} NAME=CKPT")
    if not path.exists():
        raise TalkfaceError(f"{option} {value}: no such checkpoint file or run folder")
    path = resolve_checkpoint(path, option)
    return Checkpoint(name or default_name(path), path, option)


def resolve_checkpoint(path: Path, option: str) -> Path:
    """A file as it is; a run folder as the best checkpoint its newest last.ckpt recorded (what
    `talkface test --ckpt_path best` picks, so the numbers agree with it)."""
    if path.is_file():
        return path
    lasts = sorted(path.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not lasts:
        raise TalkfaceError(f"{option} {path}: no last.ckpt under this run folder; give a .ckpt file")
    from talkface.training_cli import best_recorded_in

    try:
        return best_recorded_in(lasts[-1])
    except TalkfaceError:
        raise TalkfaceError(f"{option} {path}: {lasts[-1]} records no best checkpoint; give a .ckpt file") from None


def default_name(path: Path) -> str:
    """`run (best-epoch=59)` for a Lightning run's checkpoint, else the file's stem."""
    parts = path.parts
    if "lightning_logs" in parts and parts.index("lightning_logs") > 0:
        return f"{parts[parts.index('lightning_logs') - 1]} ({path.stem})"
    return path.stem


def ablation_checkpoints(folder: Path) -> tuple[list[Checkpoint], list[str]]:
    """The variants `talkface ablate` trained under `folder` (variant0, variant1, ...), named as it names them."""
    from talkface.commands.ablate import VARIANTS

    if not folder.is_dir():
        raise TalkfaceError(f"--ablation-dir {folder}: no such folder (made by `talkface ablate --out {folder}`)")
    found, notes = [], []
    for index, name in enumerate(VARIANTS):
        variant = folder / f"variant{index}"
        if variant.is_dir():
            found.append(Checkpoint(name, resolve_checkpoint(variant, "--ablation-dir"), "--ablation-dir"))
        else:
            notes.append(f"ablation variant {index} ({name}) not found under {folder}: left out")
    if not found:
        raise TalkfaceError(
            f"--ablation-dir {folder}: no variant0, variant1, ... folders (made by `talkface ablate --out {folder}`)"
        )
    return found, notes


# ---- the data
def read_meta(settings: Settings) -> dict:
    """The prepared dataset's facts and the number of clips in its split (errors for a wrong folder or split)."""
    from datamodules import LRWDataModule

    if not (settings.data_dir / "meta.json").is_file():
        raise TalkfaceError(
            f"--data {settings.data_dir}: not a prepared dataset (no meta.json); make one with "
            f"`talkface prepare --src RAW --out {settings.data_dir}`"
        )
    data = LRWDataModule(
        str(settings.data_dir), batch_size=settings.batch_size, num_workers=0, test_split=settings.split
    )
    meta = dict(data.meta)
    meta["clips"] = len(data.dataset(settings.split))
    return meta


def clips_evaluated(settings: Settings, meta: dict) -> int:
    if settings.limit_batches is None:
        return meta["clips"]
    return min(meta["clips"], settings.limit_batches * settings.batch_size)


# ---- checkpoints
def check_landmark_data(checkpoint: Checkpoint, model, facts: dict, meta: dict, data_dir: Path) -> list[str]:
    """Refuse data with other audio features; notes when word accuracy cannot be measured."""
    from talkface.audio.features import FeatureConfig

    features = facts.get("features")
    if features is not None and features != meta["features"]:
        raise TalkfaceError(
            f"{checkpoint.option} {checkpoint.name}: trained on {_describe(features)} audio features but {data_dir} "
            f"holds {_describe(meta['features'])}; prepare the data again with the checkpoint's --features/--n-mels/--context"
        )
    if features is None and FeatureConfig(**meta["features"]).dim != model.hparams.feature_dim:
        raise TalkfaceError(
            f"{checkpoint.option} {checkpoint.name}: expects {model.hparams.feature_dim}-dim audio features, "
            f"{data_dir} holds {_describe(meta['features'])}"
        )
    vocabulary = facts.get("vocabulary")
    if meta["vocabulary"] and vocabulary is not None and list(vocabulary) != list(meta["vocabulary"]):
        note = (
            f"{checkpoint.name}: trained on another vocabulary ({len(vocabulary)} words) than {data_dir} "
            f"({len(meta['vocabulary'])} words); its word accuracy is left out"
        )
        return [note]
    return []


def check_generator_data(checkpoint: Checkpoint, model, meta: dict, data_dir: Path) -> None:
    size = int(model.hparams.image_size)
    if size != int(meta["crop_size"]):
        raise TalkfaceError(
            f"{checkpoint.option} {checkpoint.name}: makes {size} px frames but {data_dir} holds {meta['crop_size']} px "
            f"crops; prepare the data with --crop {size}"
        )


def _describe(features: dict) -> str:
    size = features.get("n_mels") if features.get("kind") == "mel" else features.get("n_mfcc")
    return f"{features.get('kind')}-{size} ({features.get('context')} frames of context)"


# ---- running
@contextlib.contextmanager
def quiet():
    """Lightning's banner lines and its warnings about things this command chose (no logger,
    an iterable dataset) would bury the progress lines."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(lightning|litdata)\b")
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=False):
                logger.setLevel(level)


def test_metrics(model, fields, settings: Settings) -> dict[str, float]:
    """`trainer.test` of one model on the split; metric names without the `test/` prefix."""
    import lightning as L

    from datamodules import LRWDataModule

    data = LRWDataModule(
        str(settings.data_dir),
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        fields=list(fields),
        test_split=settings.split,
    )
    with quiet():
        trainer = L.Trainer(
            accelerator=settings.accelerator,
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            limit_test_batches=settings.limit_batches if settings.limit_batches is not None else 1.0,
        )
        results = trainer.test(model, datamodule=data, verbose=False)
    return {key.removeprefix("test/"): float(value) for key, value in results[0].items()}


def split_baseline(metrics: dict[str, float], prefix: str) -> tuple[dict[str, float], dict[str, float]]:
    """(the model's metrics, the baseline's) from one run's `name` and `prefix/name` keys."""
    own = {k: v for k, v in metrics.items() if "/" not in k}
    baseline = {k.removeprefix(f"{prefix}/"): v for k, v in metrics.items() if k.startswith(f"{prefix}/")}
    return own, baseline


@dataclass(frozen=True)
class Loaded:
    checkpoint: Checkpoint
    model: Any  # LandmarkModule or FaceGenModule, in eval mode
    facts: dict  # the data facts stored in the checkpoint


def load_all(checkpoints: list[Checkpoint], expected: type) -> list[Loaded]:
    """Every model up front, so a wrong file fails before minutes of work on the others; messages
    name the option that gave the file."""
    from talkface.generation.checkpoints import load_stage

    return [Loaded(c, *load_stage(c.path, expected, option=c.option)) for c in checkpoints]


def evaluate(
    landmarks: list[Loaded],
    generators: list[Loaded],
    settings: Settings,
    meta: dict,
    end_to_end: bool = True,
    log=lambda line: print(line, file=sys.stderr, flush=True),
    expert=None,
) -> Evaluation:
    """Every landmark model, every generator, and (with `end_to_end`) every pair of the two; with a
    sync `expert` (talkface/sync/experts.py), the lip sync of every pair and of the two baselines."""
    from talkface.evaluation.end_to_end import BASELINE_PREFIX, LIP_SYNC_PREFIX, EndToEnd
    from talkface.evaluation.lip_sync import REAL_PREFIX, STILL_PREFIX

    result = Evaluation()
    without_words = set()  # models whose vocabulary is not the data's
    for item in landmarks:  # all checks before any run
        notes = check_landmark_data(item.checkpoint, item.model, item.facts, meta, settings.data_dir)
        result.notes += notes
        if notes:
            without_words.add(item.checkpoint)
    for item in generators:
        check_generator_data(item.checkpoint, item.model, meta, settings.data_dir)
        item.model.hparams.eval_frame_stride = settings.frame_stride  # one set of frames for every row

    pairs = [(lm, gen) for lm in landmarks for gen in generators] if end_to_end else []
    total = len(landmarks) + len(generators) + len(pairs)

    done = 0

    def add(table: str, row: Row, headline: str) -> None:
        nonlocal done
        done += 1
        result.tables[table].append(row)
        log(f"talkface evaluate: [{done}/{total}] {TABLE_NAMES[table]} {row.name}: {headline} ({row.seconds:.1f} s)")

    for item in landmarks:
        started = time.perf_counter()
        own, baseline = split_baseline(test_metrics(item.model, item.model.data_fields, settings), "still_identity")
        if item.checkpoint in without_words:  # the data's labels index other words
            own["word_acc_predicted"] = own["word_acc_true"] = None
        if not result.tables["stage1"]:
            result.tables["stage1"].append(Row(LANDMARK_BASELINE, baseline, baseline=True))
        row = Row(
            item.checkpoint.name,
            own,
            checkpoints={"landmark": str(item.checkpoint.path)},
            seconds=time.perf_counter() - started,
        )
        add("stage1", row, f"mouth LMD {own['lmd_mouth']:.3f} px, word acc. {_percent(own['word_acc_predicted'])}")

    for item in generators:
        started = time.perf_counter()
        own, baseline = split_baseline(test_metrics(item.model, item.model.data_fields, settings), "copy_reference")
        if not result.tables["stage2"]:
            result.tables["stage2"].append(Row(FRAME_BASELINE, baseline, baseline=True))
        row = Row(
            item.checkpoint.name,
            own,
            checkpoints={"generator": str(item.checkpoint.path)},
            seconds=time.perf_counter() - started,
        )
        add("stage2", row, f"PSNR {own['psnr']:.2f} dB, mouth LMD {own['lmd_mouth']:.3f} px")

    for landmark, generator in pairs:
        started = time.perf_counter()
        chain = EndToEnd(landmark.model, generator.model, settings.frame_stride, expert)
        measured = test_metrics(chain, chain.data_fields, settings)
        own, baseline = split_baseline(measured, BASELINE_PREFIX)
        _, sync = split_baseline(measured, LIP_SYNC_PREFIX)
        if not result.tables["end_to_end"]:
            # Stage 2's baseline row (the very same frames) and the real-face metrics of the photo held still.
            result.tables["end_to_end"].append(
                Row(
                    FRAME_BASELINE,
                    {**result.tables["stage2"][0].metrics, **baseline},
                    baseline=True,
                    counts=chain.baseline_counts,
                    trivial=TRIVIAL_FOR_BASELINE,
                )
            )
        name = (
            landmark.checkpoint.name
            if len(generators) == 1
            else f"{landmark.checkpoint.name} → {generator.checkpoint.name}"
        )
        paths = {"landmark": str(landmark.checkpoint.path), "generator": str(generator.checkpoint.path)}
        own["face_found"] = face_found(chain.counts)
        row = Row(name, own, checkpoints=paths, seconds=time.perf_counter() - started, counts=chain.counts)
        headline = (
            f"PSNR {own['psnr']:.2f} dB, mouth LMD {own['lmd_mouth']:.3f} px, "
            f"mouth-opening corr. {own['mouth_open_corr']:.3f}, upper-face PSNR {own['upper_face_psnr']:.2f} dB, "
            f"sharpness ratio {own['sharpness_ratio']:.3f}"
        )
        if expert is not None:
            counts = {"lip_sync": {"clips": chain.sync_clips}}
            if not result.tables["lip_sync"]:  # the baselines do not depend on the models: the first run's
                for label, prefix in ((REAL_VIDEO, REAL_PREFIX), (FRAME_BASELINE, STILL_PREFIX)):
                    _, scores = split_baseline(sync, prefix)
                    result.tables["lip_sync"].append(Row(label, scores, baseline=True, counts=counts))
            scores = {k: v for k, v in sync.items() if "/" not in k}
            result.tables["lip_sync"].append(Row(name, scores, checkpoints=paths, counts=counts))
            headline += f", LSE-D {scores['lse_d']:.3f}, LSE-C {scores['lse_c']:.3f}"
        add("end_to_end", row, headline)
    return result


def face_found(counts: dict[str, dict[str, int]]) -> float | None:
    """The share of generated frames in which dlib re-detected a face (the mouth LMD's counts)."""
    detection = counts.get("lmd_mouth", {})
    frames = detection.get("frames", 0)
    return 1.0 - detection.get("undetected", 0) / frames if frames else None


TABLE_NAMES = {"stage1": "stage 1", "stage2": "stage 2", "end_to_end": "end to end"}


def _percent(value) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f} %"
