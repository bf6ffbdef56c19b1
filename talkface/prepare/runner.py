"""Orchestrates preparation: find clips, process the unfinished ones in parallel, pack, report.

Resumable and idempotent: every finished clip is a file in `<out>/work/`, so a killed run re-run
with the same command processes only the rest, and packing is a pure function of those files.
`<out>/meta.json` is written last: a dataset without it is not finished.

Never touches the user's files: every setting and path is checked before any clip is read; `--out`
may not be `--src` nor hold it; an `--out` inside `--src` is left out of the clip search (so a
re-run finds the same clips); `<out>` must be new, empty or made by talkface prepare (marker
`<out>/.talkface-prepared`), and a split folder is only ever replaced when prepare made it.
"""

from __future__ import annotations

import multiprocessing
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from talkface import FPS, SAMPLE_RATE
from talkface.errors import TalkfaceError
from talkface.faces import load_template
from talkface.outputs import claim
from talkface.prepare.clip_pipeline import PipelineSettings
from talkface.prepare.packing import SplitPacker
from talkface.prepare.samples import FRAME_FIELDS, LIGHT_FIELDS, cut_samples
from talkface.prepare.settings import MARKER, PrepareSettings, check_paths, check_split_folder, split_is_ours
from talkface.prepare.sources import GRID_VOCABULARY, LRW_SPLITS, Source, detect_layout, find_sources
from talkface.prepare.work_store import WorkStore, write_json_atomic
from talkface.prepare.worker import Outcome, init_worker, prepare_one

FORMAT = "talkface-prepared/1"
PCA_COMPONENTS = 20


@dataclass
class PrepareReport:
    out: Path
    samples: dict[str, int]
    frames: dict[str, int]
    skipped: list[dict]
    processed_now: int
    seconds: float

    @property
    def total_samples(self) -> int:
        return sum(self.samples.values())


def prepare_dataset(settings: PrepareSettings) -> PrepareReport:
    settings.check()
    started = time.perf_counter()
    src, out = Path(settings.src), Path(settings.out)
    check_paths(src, out)
    layout = detect_layout(src, exclude=out) if settings.layout == "auto" else settings.layout
    identities = settings.identity_table()
    sources = find_sources(
        src, layout, tuple(settings.splits), tuple(settings.split_ratios), exclude=out, identities=identities
    )
    for split in sorted({s.split for s in sources}):
        check_split_folder(out, split)
    window = 0 if layout == "lrw" else settings.window
    stride = settings.stride or window or 1
    pipeline = PipelineSettings(crop_size=settings.crop_size, features=settings.features, min_frames=max(window, 5))

    claim(out, MARKER, "prepare")
    store = WorkStore(out / "work")
    store.remove_partials()
    _check_same_settings(out, layout, settings, window, stride)
    if settings.retry_skipped:
        store.forget_skips()

    todo = [s for s in sources if not store.is_done(s.id)]
    _log(
        f"preparing {len(todo)} of {len(sources)} {layout} clips "
        f"({len(sources) - len(todo)} already done) with {settings.workers} worker(s), {settings.backend} landmarks"
    )
    outcomes = _run(todo, settings, pipeline, store)

    (out / "meta.json").unlink(missing_ok=True)
    vocabulary = _vocabulary(src, layout, exclude=out)
    packed = _pack(sources, store, out, window, stride, vocabulary, settings)
    skipped = [
        {"id": s.id, "path": str(s.path), "split": s.split, "reason": store.skip_reason(s.id)}
        for s in sources
        if store.skip_reason(s.id) is not None
    ]
    report = PrepareReport(
        out=out,
        samples={k: v["samples"] for k, v in packed["splits"].items()},
        frames={k: v["frames"] for k, v in packed["splits"].items()},
        skipped=skipped,
        processed_now=len(outcomes),
        seconds=time.perf_counter() - started,
    )
    now_frames = sum(o.frames for o in outcomes)
    write_json_atomic(
        out / "report.json",
        {
            "samples": report.samples,
            "frames": report.frames,
            "sources": len(sources),
            "skipped": skipped,
            "processed_this_run": len(outcomes),
            "frames_this_run": now_frames,
            "seconds": round(report.seconds, 3),
            "frames_per_second_this_run": round(now_frames / max(report.seconds, 1e-9), 1),
        },
    )
    if report.total_samples:
        meta = _meta(settings, layout, src, window, stride, vocabulary, packed)
        if identities is not None:
            meta["identities"] = str(identities.path)
        write_json_atomic(out / "meta.json", meta)
    _log(
        f"prepared {report.total_samples} samples ({sum(report.frames.values())} frames; "
        + ", ".join(f"{k} {v}" for k, v in report.samples.items())
        + f") into {out} in {report.seconds:.1f} s; {len(skipped)} skipped"
        + (f" (reasons in {out / 'report.json'})" if skipped else "")
    )
    return report


def _run(todo: list[Source], settings: PrepareSettings, pipeline: PipelineSettings, store: WorkStore) -> list[Outcome]:
    if not todo:
        return []
    initargs = (settings.backend, pipeline, store.root)
    bar = tqdm(total=len(todo), unit="clip", disable=not settings.progress, file=sys.stderr, dynamic_ncols=True)
    outcomes: list[Outcome] = []
    started = time.perf_counter()

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        frames = sum(o.frames for o in outcomes)
        bar.set_postfix(
            frames_s=f"{frames / (time.perf_counter() - started):.0f}",
            skipped=sum(o.reason is not None for o in outcomes),
        )
        bar.update()

    try:
        if settings.workers == 1:
            init_worker(*initargs)
            for source in todo:
                record(prepare_one(source))
        else:
            context = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state
            processes = min(settings.workers, len(todo))  # no idle worker loading a model for nothing
            with context.Pool(processes, initializer=init_worker, initargs=initargs) as pool:
                for outcome in pool.imap_unordered(prepare_one, todo, chunksize=1):
                    record(outcome)
    finally:
        bar.close()
    return outcomes


def _pack(sources, store, out, window, stride, vocabulary, settings) -> dict:
    features = settings.features
    splits = {}
    pca_sum = np.zeros(136)
    pca_outer = np.zeros((136, 136))
    pca_count = 0
    pca_split = "train" if any(s.split == "train" for s in sources) else None
    for split in LRW_SPLITS:
        split_sources = [s for s in sources if s.split == split]
        if not split_sources:
            stale = out / split
            if split in settings.splits and stale.is_dir() and split_is_ours(stale):
                shutil.rmtree(stale)  # an earlier run's split that no clip goes to now (new --identities)
            continue
        packer = SplitPacker(out, split)
        identities: dict[str, int] = {}  # samples per identity, when --identities named them
        for source in split_sources:
            if store.skip_reason(source.id) is not None or not store.is_done(source.id):
                continue
            before = packer.count
            video = store.load(source.id)
            for sample in cut_samples(
                source,
                video,
                window,
                stride,
                vocabulary,
                settings.crop_size,
                features.steps_per_frame,
                features.context,
            ):
                packer.add(sample)
                if pca_split in (None, split):
                    flat = sample["landmarks_norm"].reshape(len(sample["landmarks_norm"]), -1).astype(np.float64)
                    pca_sum += flat.sum(0)
                    pca_outer += flat.T @ flat
                    pca_count += len(flat)
            if source.identity is not None and packer.count > before:
                identities[source.identity] = identities.get(source.identity, 0) + packer.count - before
        if packer.finish():
            splits[split] = {"samples": packer.count, "frames": packer.frames}
            if identities:
                splits[split]["identities"] = dict(sorted(identities.items()))
    return {"splits": splits, "pca": _pca(pca_sum, pca_outer, pca_count)}


def _pca(total: np.ndarray, outer: np.ndarray, count: int) -> dict | None:
    if count < 2:
        return None
    mean = total / count
    covariance = outer / count - np.outer(mean, mean)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:PCA_COMPONENTS]
    values = np.clip(values, 0, None)
    components = vectors[:, order].T
    components *= np.sign(components[:, :1] + 1e-12)  # a fixed sign per component
    return {
        "mean": np.round(mean, 7).tolist(),
        "components": np.round(components, 7).tolist(),
        "explained_variance_ratio": np.round(values[order] / max(values.sum(), 1e-12), 7).tolist(),
        "frames": int(count),
    }


def _vocabulary(src: Path, layout: str, exclude: Path | None = None) -> list[str]:
    if layout == "lrw":
        skip = exclude.resolve() if exclude is not None else None
        return sorted(
            p.name
            for p in src.iterdir()
            if p.is_dir() and p.resolve() != skip and any((p / s).is_dir() for s in LRW_SPLITS)
        )
    if layout == "grid":
        return list(GRID_VOCABULARY)
    return []


def _meta(settings, layout, src, window, stride, vocabulary, packed) -> dict:
    return {
        "format": FORMAT,
        "layout": layout,
        "source": str(src),
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "crop_size": settings.crop_size,
        "backend": settings.backend,
        "window": window,
        "stride": stride,
        "features": settings.features.to_dict(),
        "vocabulary": vocabulary,
        "template": np.round(load_template(settings.crop_size), 4).tolist(),
        "splits": packed["splits"],
        "pca": packed["pca"],
        "fields": {"light": list(LIGHT_FIELDS), "full": list(LIGHT_FIELDS + FRAME_FIELDS)},
    }


def _check_same_settings(out: Path, layout: str, settings: PrepareSettings, window: int, stride: int) -> None:
    """Refuse to mix clips prepared with different settings in one output folder."""
    import json

    wanted = {
        "layout": layout,
        "crop_size": settings.crop_size,
        "backend": settings.backend,
        "window": window,
        "stride": stride,
        "features": settings.features.to_dict(),
        "landmark_smoothing": PipelineSettings().landmark_smoothing,
    }
    path = out / "work" / "settings.json"
    if path.exists():
        found = json.loads(path.read_text())
        changed = sorted(k for k in wanted if found.get(k) != wanted[k])
        if changed:
            raise TalkfaceError(
                f"{out} was prepared with other settings ({', '.join(changed)} differ); "
                "use a new --out folder or delete this one"
            )
    else:
        write_json_atomic(path, wanted)


def _log(message: str) -> None:
    print(f"talkface prepare: {message}", file=sys.stderr, flush=True)
