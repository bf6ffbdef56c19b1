"""LRWDataModule: one DataModule for both stages, streaming a prepared dataset with litdata.

Each LightningModule declares the fields it needs (`data_fields`); stage 1 asks for none of the
frame fields and so streams the `light` copy of each split, which holds no frames at all. The
batch size is global: it is split over all devices of all nodes.

Several prepared datasets can be trained on at once (`mix`): training draws each sample from one
of them at random by weight (litdata's CombinedStreamingDataset), validation and test read every
sample of every dataset that has the split. Their word labels are mapped into one merged
vocabulary, so one word detector serves them all.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import lightning as L
from litdata import CombinedStreamingDataset, StreamingDataLoader, StreamingDataset

from datamodules.sample_transform import FRAME_FIELDS, STAGE_ONE_FIELDS, SampleTransform
from talkface.checks import check_number
from talkface.errors import TalkfaceError


class EpochResumingLoader(StreamingDataLoader):
    """Resumes at epoch granularity: restores the epoch counter (so the shuffle order moves on)
    but not litdata's mid-epoch sample position. talkface checkpoints at epoch ends, so a resume
    replays and skips nothing; a mid-epoch checkpoint would restart that epoch from its start."""

    def load_state_dict(self, obj: dict) -> None:
        self.current_epoch = obj.get("current_epoch", 0)


class LRWDataModule(L.LightningDataModule):
    """The prepared dataset (LRW, GRID, any video folder, or the built-in sample) for both stages."""

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 16,
        num_workers: int = 2,
        fields: list[str] | None = None,
        raw_dir: str | None = None,
        sample: dict | None = None,
        prepare_workers: int = 2,
        prepare_backend: str = "dlib",
        prepare_crop: int = 128,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test",
        landmark_jitter: float = 0.0,
        audio_jitter: float = 0.0,
        audio_warp: float = 0.0,
        color_jitter: float = 0.0,
        max_shift: int = 0,
        reference_frame: str = "random",
        shuffle_seed: int = 42,
        weight: float = 1.0,
        mix: list[dict] | None = None,
    ) -> None:
        """
        Args:
            data_dir: a folder made by `talkface prepare` (or to be made from `raw_dir`).
            batch_size: global batch size, divided over all devices of all nodes (must divide
                evenly).
            num_workers: loader worker processes per device.
            fields: data fields to load; default: what the LightningModule's `data_fields` asks
                for (its loss terms must still find theirs).
            raw_dir: a raw dataset (LRW layout, GRID or a video folder); when given and `data_dir`
                is not prepared yet, `prepare_data` prepares it once (on one process).
            sample: settings of the built-in sample (e.g. {num_words: 20, train: 12, val: 3,
                test: 3, seed: 0}); when given and `raw_dir` does not exist yet, the sample is
                built there first, so a config runs from nothing.
            prepare_workers: worker processes for that preparation.
            prepare_backend: landmark detector for that preparation: "dlib" or "face_alignment".
            prepare_crop: side in pixels of the aligned face crops that preparation writes.
            train_split: split trained on (a folder name inside `data_dir`).
            val_split: split validated on; when it was not prepared, there is no validation.
            test_split: split that `test` and `predict` read.
            landmark_jitter: training only: std of a random per-frame shift of the landmarks, in
                units of the crop side (stage 1's imitation of small head motion).
            audio_jitter: training only: per clip, a random level within ± this and a tilt across
                the bands within ± half this are added to the log audio features (natural-log
                units: 1 ≈ ± 4.3 dB), so stage 1 does not learn one microphone (stage 1 on real
                speech).
            audio_warp: training only: per clip, the mel band axis is stretched by a factor
                within 1 ± this (vocal tract length perturbation, e.g. 0.1), so stage 1 hears
                many more voices than the training people's.
            color_jitter: training only: per-channel gain within 1 ± this, plus a brightness
                offset within ± 64 × this grey levels, per clip (stage 2).
            max_shift: training only: frames and landmarks of a clip move together by up to this
                many pixels in x and y (stage 2).
            reference_frame: which frame gives the identity in training, "random" (default) or
                "first"; validation and test always use the first frame.
            shuffle_seed: seed of the training shuffle order (the same on every rank, so the
                shards do not overlap), and of the choice of dataset per sample under `mix`.
            weight: mixing weight of `data_dir` when `mix` is given (ignored without it).
            mix: more prepared datasets trained on together with `data_dir`, each
                `{data_dir: FOLDER, weight: W}`, e.g. `[{data_dir: data/corpus/speakers, weight: 0.5}]`
                (weights > 0, relative: normalised over `weight` and these). Training draws every
                sample from one dataset at random by weight, and an epoch ends as soon as one of
                them runs out (about min(samples / weight) samples). Validation and test read
                every sample of each dataset that has the split (none needs one). All must agree
                on what the model needs (audio feature settings, crop size, fps, sample rate,
                window): a mismatch is an error. Word labels are mapped into one vocabulary:
                `data_dir`'s words, then each mixed dataset's new words in order (a dataset
                without words adds none; its samples keep label -1). These folders are never
                prepared here: run `talkface prepare` for each first. A dataset prepared with
                `--video-only` (no sound) serves stage 2 only; a model that reads audio refuses it.
        """
        super().__init__()
        check_number("data.batch_size", batch_size, 1, whole=True)
        check_number("data.num_workers", num_workers, 0, whole=True)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.fields = tuple(fields) if fields else None
        self.datasets: dict[str, StreamingDataset | CombinedStreamingDataset] = {}
        self.split_sizes: dict[str, int] = {}  # samples per split, over all mixed datasets
        self._meta: dict | None = None
        self._mixed_metas: list[dict] | None = None
        self.data_dirs, self.weights = _mixture(self.data_dir, weight, mix)

    # ---- dataset facts (also used to link values such as the vocabulary size into the model)
    @property
    def meta(self) -> dict:
        if self._meta is None:
            self._meta = _read_meta(self.data_dir, ", or give raw_dir")
        return self._meta

    @property
    def metas(self) -> list[dict]:
        """meta.json of `data_dir` and of every `mix` dataset, checked to agree on what the model needs."""
        if len(self.data_dirs) == 1:
            return [self.meta]
        if self._mixed_metas is None:
            metas = [self.meta] + [
                _read_meta(folder, " (a data.mix folder is never prepared here)") for folder in self.data_dirs[1:]
            ]
            for folder, meta in zip(self.data_dirs[1:], metas[1:], strict=True):
                _check_agree(self.data_dir, metas[0], folder, meta)
            self._mixed_metas = metas
        return self._mixed_metas

    def inference_facts(self) -> dict:
        """What generation needs to know about the training data, stored in every checkpoint:
        the audio features the model was trained on, the crop size and the (merged) vocabulary."""
        meta = self.meta
        return {"features": meta["features"], "crop_size": meta["crop_size"], "vocabulary": self.vocabulary}

    @property
    def num_words(self) -> int:
        """Vocabulary size (500 on LRW); 0 when the data has no word labels."""
        return len(self.vocabulary)

    @property
    def vocabulary(self) -> list[str]:
        """`data_dir`'s words, then the words of each `mix` dataset not yet in it, in order."""
        merged = list(self.meta["vocabulary"])
        known = set(merged)
        for meta in self.metas[1:]:
            for word in meta["vocabulary"]:
                if word not in known:
                    merged.append(word)
                    known.add(word)
        return merged

    def word_map(self, index: int) -> tuple[int, ...] | None:
        """Dataset `index`'s word labels in the merged vocabulary; None when they are unchanged."""
        own = self.metas[index]["vocabulary"]
        merged = self.vocabulary
        if own == merged[: len(own)]:
            return None
        position = {word: i for i, word in enumerate(merged)}
        return tuple(position[word] for word in own)

    def prepare_data(self) -> None:
        self.ensure_prepared()

    def ensure_prepared(self) -> None:
        """Build the sample and prepare `raw_dir` when asked to and not done yet.

        Every process may call this (the CLI needs the vocabulary before Lightning's
        `prepare_data` runs); a file lock lets one process do the work while the others wait.
        """
        if self.hparams.raw_dir is None or (self.data_dir / "meta.json").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / ".prepare.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not (self.data_dir / "meta.json").exists():
                    self._prepare()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _prepare(self) -> None:
        from talkface.prepare import PrepareSettings, prepare_dataset

        raw_dir = Path(self.hparams.raw_dir)
        if self.hparams.sample is not None:  # idempotent: finished clips are kept
            from talkface.sample import build_sample

            settings = dict(self.hparams.sample)
            splits = {k: settings.pop(k) for k in ("train", "val", "test") if k in settings}
            build_sample(raw_dir, splits=splits or None, progress=False, **settings)
        if not raw_dir.exists():
            raise TalkfaceError(f"raw_dir {raw_dir} not found (build it with `talkface sample --out {raw_dir}`)")

        prepare_dataset(
            PrepareSettings(
                src=Path(self.hparams.raw_dir),
                out=self.data_dir,
                workers=self.hparams.prepare_workers,
                backend=self.hparams.prepare_backend,
                crop_size=self.hparams.prepare_crop,
                progress=False,
            )
        )

    def check_batch_size(self, world_size: int) -> int:
        """The per-device batch size; an error when the global one does not divide evenly."""
        if self.batch_size % world_size:
            raise TalkfaceError(
                f"global batch size {self.batch_size} does not divide over {world_size} devices; "
                f"use a multiple of {world_size}"
            )
        return self.batch_size // world_size

    def setup(self, stage: str | None = None) -> None:
        """Safe to call more than once: datasets are built once per split."""
        world_size = self.trainer.world_size if self.trainer is not None else 1
        self.per_device_batch_size = self.check_batch_size(world_size)
        wanted = {
            "fit": (self.hparams.train_split, self.hparams.val_split),
            "validate": (self.hparams.val_split,),
            "test": (self.hparams.test_split,),
            "predict": (self.hparams.test_split,),
            None: (self.hparams.train_split, self.hparams.val_split, self.hparams.test_split),
        }[stage]
        for split in wanted:
            optional = stage is None or (stage == "fit" and split == self.hparams.val_split)
            if split in self.datasets or (optional and not self.has_split(split)):
                continue  # a missing validation split just means no validation
            self.datasets[split] = self.dataset(split, train=split == self.hparams.train_split)
        if stage == "fit":
            train = self.hparams.train_split
            samples = self.split_sizes.get(train)
            samples = len(self.datasets[train]) if samples is None else samples  # per rank
            self.check_enough_training_samples(world_size, samples * world_size)

    def check_enough_training_samples(self, world_size: int, samples: int | None = None) -> None:
        """Training drops the last incomplete batch: with fewer samples than one batch per device,
        Lightning would stop at once with "No training batches" and exit 0 without a checkpoint.
        `samples`: the training split's size (default: what meta.json records)."""
        per_device = self.check_batch_size(world_size)
        if samples is None:
            counts = [m.get("splits", {}).get(self.hparams.train_split, {}).get("samples") for m in self.metas]
            samples = None if None in counts else sum(counts)
        if samples is not None and samples // world_size < per_device:
            split = " + ".join(str(d / self.hparams.train_split) for d in self.data_dirs)
            raise TalkfaceError(
                f"data.batch_size {self.batch_size} ({per_device} per device) is more than the "
                f"{samples} training samples in {split}; lower --data.batch_size or prepare more clips"
            )

    def has_split(self, split: str, index: int | None = None) -> bool:
        """Whether dataset `index` (default: any of `data_dir` and the `mix` datasets) has `split`."""
        folders = self.data_dirs if index is None else [self.data_dirs[index]]
        return any((folder / split / "light" / "index.json").exists() for folder in folders)

    def requested_fields(self) -> tuple[str, ...]:
        if self.fields:
            return self.fields
        module = self.trainer.lightning_module if self.trainer is not None else None
        return tuple(getattr(module, "data_fields", STAGE_ONE_FIELDS))

    def dataset(self, split: str, train: bool = False) -> StreamingDataset | CombinedStreamingDataset:
        """The split of `data_dir`; with `mix`, the split of every dataset combined (training: drawn
        by weight, every dataset must have it; otherwise: each sample of those that have it once)."""
        metas = self.metas  # fails clearly when a folder was never prepared or they disagree
        if len(metas) == 1:
            dataset = self._single(0, split, train)
            self.split_sizes[split] = len(dataset)
            return dataset
        indices = range(len(metas)) if train else [i for i in range(len(metas)) if self.has_split(split, i)]
        parts = [self._single(i, split, train) for i in indices or [0]]  # [0]: the error naming the split
        self.split_sizes[split] = sum(len(part) for part in parts)
        if len(parts) == 1:
            return parts[0]
        if train:
            weights = [self.weights[i] for i in indices]
            return CombinedStreamingDataset(
                parts, seed=self.hparams.shuffle_seed, weights=weights, iterate_over_all=False
            )
        return CombinedStreamingDataset(parts, seed=self.hparams.shuffle_seed, iterate_over_all=True)

    def _single(self, index: int, split: str, train: bool) -> StreamingDataset:
        meta, data_dir = self.metas[index], self.data_dirs[index]
        fields = self.requested_fields()
        part = "full" if set(fields) & set(FRAME_FIELDS) else "light"
        folder = data_dir / split / part
        if not (folder / "index.json").exists():
            available = sorted(p.name for p in data_dir.iterdir() if (p / "light" / "index.json").exists())
            raise TalkfaceError(
                f"{data_dir}: split {split!r} was not prepared (available: {', '.join(available) or 'none'})"
            )
        check_has_sound(data_dir, meta, fields)
        features = meta["features"]
        steps = features["sample_rate"] // features["fps"] // features["hop_length"]
        transform = SampleTransform(
            fields,
            steps_per_frame=steps,
            window=features["context"] * steps,
            train=train,
            crop_size=meta["crop_size"],
            landmark_jitter=self.hparams.landmark_jitter,
            audio_jitter=self.hparams.audio_jitter,
            audio_warp=self.hparams.audio_warp,
            color_jitter=self.hparams.color_jitter,
            max_shift=self.hparams.max_shift,
            reference=self.hparams.reference_frame,
            word_map=self.word_map(index) if len(self.data_dirs) > 1 else None,
        )
        return StreamingDataset(
            str(folder), shuffle=train, drop_last=train, seed=self.hparams.shuffle_seed, transform=transform
        )

    def _loader(self, split: str) -> StreamingDataLoader:
        if split not in self.datasets:
            self.datasets[split] = self.dataset(split, train=split == self.hparams.train_split)
        return EpochResumingLoader(
            self.datasets[split],
            batch_size=getattr(self, "per_device_batch_size", self.batch_size),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> StreamingDataLoader:
        return self._loader(self.hparams.train_split)

    def val_dataloader(self) -> StreamingDataLoader | list:
        if self.hparams.val_split not in self.datasets and not self.has_split(self.hparams.val_split):
            return []
        return self._loader(self.hparams.val_split)

    def test_dataloader(self) -> StreamingDataLoader:
        return self._loader(self.hparams.test_split)

    def predict_dataloader(self) -> StreamingDataLoader:
        return self._loader(self.hparams.test_split)

    def calibration_dataloader(self) -> StreamingDataLoader:
        """`data_dir`'s training split in order and unaugmented, the first frame as the photo (as at
        test time), without the datasets mixed in: what a model fits after training on (stage 1's
        mouth rest). Under DDP each rank reads its shard."""
        dataset = self._single(0, self.hparams.train_split, train=False)
        return StreamingDataLoader(dataset, batch_size=self.batch_size, num_workers=0)


# Fields that mean nothing without the clip's sound: a `--video-only` dataset cannot give them.
SOUND_FIELDS = ("audio_windows", "phone_windows")


def check_has_sound(data_dir: Path, meta: dict, fields: tuple[str, ...]) -> None:
    """One line when a model that listens is given a dataset prepared without sound (stage 1 would
    learn that silence moves the mouth)."""
    needs = [f for f in fields if f in SOUND_FIELDS]
    if needs and meta.get("audio", True) is False:
        raise TalkfaceError(
            f"{data_dir} was prepared with --video-only (no sound), and this model reads {', '.join(needs)}: "
            "train stage 2 on it, or remove it from data.mix"
        )


# What every mixed dataset must share with `data_dir`: the model's inputs depend on each.
AGREE_KEYS = ("features", "crop_size", "fps", "sample_rate")


def _read_meta(folder: Path, hint: str = "") -> dict:
    path = folder / "meta.json"
    if not path.exists():
        run = "run `talkface prepare --src RAW --out DIR` first"
        raise TalkfaceError(f"{folder}: not a prepared dataset (no meta.json); {run}{hint}")
    return json.loads(path.read_text())


def _mixture(data_dir: Path, weight: float, mix: list[dict] | None) -> tuple[list[Path], list[float]]:
    """`data_dir` and the `mix` folders, with their weights normalised to sum to 1."""
    if not mix:
        return [data_dir], [1.0]
    if not isinstance(mix, (list, tuple)):
        raise TalkfaceError("data.mix must be a list of {data_dir: FOLDER, weight: W}")
    check_number("data.weight", weight, above=0)
    folders, weights = [data_dir], [float(weight)]
    for position, entry in enumerate(mix):
        where = f"data.mix[{position}]"
        if not isinstance(entry, dict) or "data_dir" not in entry:
            raise TalkfaceError(f"{where} must be {{data_dir: FOLDER, weight: W}}, got {entry!r}")
        unknown = sorted(set(entry) - {"data_dir", "weight"})
        if unknown:
            raise TalkfaceError(f"{where}: unknown key(s) {', '.join(unknown)}; give data_dir and weight")
        value = entry.get("weight", 1.0)
        check_number(f"{where}.weight", value, above=0)
        folder = Path(str(entry["data_dir"]))
        if any(folder.resolve() == f.resolve() for f in folders):
            raise TalkfaceError(f"{where}: {folder} is already in the mixture; name each dataset once")
        folders.append(folder)
        weights.append(float(value))
    total = sum(weights)
    return folders, [w / total for w in weights]


def _check_agree(first_dir: Path, first: dict, other_dir: Path, other: dict) -> None:
    """One line when a mixed dataset differs from `data_dir` in what the model needs."""
    differ = [key for key in AGREE_KEYS if first.get(key) != other.get(key)]
    windows = first.get("window"), other.get("window")
    if all(windows) and windows[0] != windows[1]:  # 0: whole clips (LRW), any length
        differ.append("window")
    if not differ:
        return
    details = []
    for key in differ:
        a, b = first.get(key), other.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            a, b = (
                {k: a.get(k) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)},
                {k: b.get(k) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)},
            )
        details.append(f"{key} {a} vs {b}")
    raise TalkfaceError(
        f"data.mix: {other_dir} was prepared with other settings than {first_dir} ({'; '.join(details)}); "
        "prepare every mixed dataset with the same --features, --n-mels, --context, --crop and --window"
    )
