"""Orchestrates preparation: find clips, process the unfinished ones in parallel, pack, report.

Resumable and idempotent: every finished clip is a file in `<out>/work/`, so a killed run re-run
with the same command processes only the rest, and packing is a pure function of those files.
`<out>/meta.json` is written last: a dataset without it is not finished.

Across machines (`num_nodes` > 1, one shared `<out>`), each node processes and packs its share and
node 0 merges the parts into the same dataset a single node makes (talkface/prepare/nodes.py).

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
from talkface.prepare.nodes import DONE, NODES_FOLDER, node_share, part_folder, share_digest, wait_for_parts
from talkface.prepare.packing import SplitPacker, merge_node_parts, publish_split
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
    merged: bool = True  # False on nodes 1..N-1: their part waits for node 0's merge

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
    offsets = settings.offset_table()
    if offsets is not None:
        sources, unmatched = offsets.assign(sources, src)
        if unmatched:
            _log(f"--av-offsets {offsets.path}: no clip of {src} is {', '.join(unmatched)}; those rows are not used")
    for split in sorted({s.split for s in sources}):
        check_split_folder(out, split)
    window = 0 if layout == "lrw" else settings.window
    stride = settings.stride or window or 1
    pipeline = PipelineSettings(
        crop_size=settings.crop_size,
        features=settings.features,
        min_frames=max(window, 5),
        video_only=settings.video_only,
    )
    nodes, rank = settings.num_nodes, settings.node_rank
    share = node_share(sources, nodes, rank)  # all the sources on one node
    share_ids = None if nodes == 1 else {s.id for s in share}

    claim(out, MARKER, "prepare")
    part = part_folder(out, rank)
    if nodes > 1:
        shutil.rmtree(part, ignore_errors=True)  # until this run's done.json, node 0 waits for this node
    store = WorkStore(out / "work")
    store.remove_partials(share_ids)
    _check_same_settings(out, layout, settings, window, stride, sources)
    if settings.retry_skipped:
        store.forget_skips(share_ids)

    todo = [s for s in share if not store.is_done(s.id)]
    where = "" if nodes == 1 else f"node {rank} of {nodes}: "
    _log(
        f"{where}preparing {len(todo)} of {len(share)} {layout} clips "
        f"({len(share) - len(todo)} already done) with {settings.workers} worker(s), {settings.backend} landmarks"
    )
    outcomes = _run(todo, settings, pipeline, store)
    now_frames = sum(o.frames for o in outcomes)

    if rank == 0:
        (out / "meta.json").unlink(missing_ok=True)
    vocabulary = _vocabulary(src, layout, exclude=out)
    pca_split = "train" if any(s.split == "train" for s in sources) else None
    if nodes == 1:
        partials = {split: out / f".{split}.partial" for split in LRW_SPLITS}
        packed = _pack(share, store, window, stride, vocabulary, settings, pca_split, partials.get, 0)
        packed = _publish(out, settings, packed, partials)
        processed_all, frames_all = len(outcomes), now_frames
    else:
        part.mkdir(parents=True, exist_ok=True)
        packed = _pack(share, store, window, stride, vocabulary, settings, pca_split, lambda s: part / s, rank)
        np.savez(part / "pca.npz", total=packed["pca_sums"][0], outer=packed["pca_sums"][1])
        done = {
            "share": share_digest(share, nodes),
            "splits": packed["splits"],
            "pca_count": packed["pca_sums"][2],
            "processed": len(outcomes),
            "frames": now_frames,
        }
        write_json_atomic(part / DONE, done)  # last: the part is complete
        if rank != 0:
            _log(
                f"node {rank} of {nodes}: packed {sum(v['samples'] for v in packed['splits'].values())} samples "
                f"in {time.perf_counter() - started:.1f} s; node 0 merges them into {out}"
            )
            return PrepareReport(
                out=out,
                samples={k: v["samples"] for k, v in packed["splits"].items()},
                frames={k: v["frames"] for k, v in packed["splits"].items()},
                skipped=[],
                processed_now=len(outcomes),
                seconds=time.perf_counter() - started,
                merged=False,
            )
        _log(f"node 0 of {nodes}: waiting for the other nodes' parts (at most {settings.node_timeout:.0f} s)")
        records = wait_for_parts(out, sources, nodes, settings.node_timeout)
        packed = _merge_parts(out, settings, records)
        processed_all = sum(r["processed"] for r in records)
        frames_all = sum(r["frames"] for r in records)

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
        processed_now=processed_all,
        seconds=time.perf_counter() - started,
    )
    write_json_atomic(
        out / "report.json",
        {
            "samples": report.samples,
            "frames": report.frames,
            "sources": len(sources),
            "skipped": skipped,
            "nodes": nodes,
            "processed_this_run": processed_all,
            "frames_this_run": frames_all,
            "seconds": round(report.seconds, 3),
            "frames_per_second_this_run": round(frames_all / max(report.seconds, 1e-9), 1),
        },
    )
    if report.total_samples:
        meta = _meta(settings, layout, src, window, stride, vocabulary, packed)
        if identities is not None:
            meta["identities"] = str(identities.path)
        write_json_atomic(out / "meta.json", meta)
    if nodes > 1:
        shutil.rmtree(out / NODES_FOLDER, ignore_errors=True)  # merged: the published splits hold the data
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


def _pack(sources, store, window, stride, vocabulary, settings, pca_split, folder, rank) -> dict:
    """Pack the finished clips of `sources` into `folder(split)`, chunks named after `rank`:
    per split its samples, frames and samples per identity, and the sums for the landmark PCA.
    With several nodes each packs its share as litdata's node part (`<rank>-index.json`)."""
    features = settings.features
    splits = {}
    pca_sum = np.zeros(136)
    pca_outer = np.zeros((136, 136))
    pca_count = 0
    for split in LRW_SPLITS:
        split_sources = [s for s in sources if s.split == split]
        if not split_sources:
            continue
        packer = SplitPacker(folder(split), rank)
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
        packer.close(None if settings.num_nodes == 1 else rank)
        if packer.count:
            splits[split] = {"samples": packer.count, "frames": packer.frames}
            if identities:
                splits[split]["identities"] = dict(sorted(identities.items()))
        else:
            shutil.rmtree(packer.folder, ignore_errors=True)
    return {"splits": splits, "pca_sums": (pca_sum, pca_outer, pca_count)}


def _publish(out: Path, settings, packed: dict, partials: dict[str, Path]) -> dict:
    """Publish every packed split from `partials`; remove a split of ours that no sample goes to now."""
    for split in LRW_SPLITS:
        if split in packed["splits"]:
            publish_split(out, split, partials[split])
        elif split in settings.splits:
            # No sample (all skipped), or an earlier run's split that no clip goes to now (new --identities).
            stale = out / split
            if stale.is_dir() and split_is_ours(stale):
                publish_split(out, split, None)
    return {"splits": packed["splits"], "pca": _pca(*packed["pca_sums"])}


def _merge_parts(out: Path, settings, records: list[dict]) -> dict:
    """Node 0: join every node's part (in node order) into one published dataset per split."""
    splits: dict[str, dict] = {}
    pca_sum = np.zeros(136)
    pca_outer = np.zeros((136, 136))
    pca_count = 0
    partials = {}
    for split in LRW_SPLITS:
        parts = [part_folder(out, rank) / split for rank, r in enumerate(records) if split in r["splits"]]
        if not parts:
            continue
        partials[split] = out / f".{split}.partial"
        merge_node_parts(parts, partials[split])
        merged: dict = {"samples": 0, "frames": 0}
        identities: dict[str, int] = {}
        for record in records:
            counts = record["splits"].get(split, {})
            merged["samples"] += counts.get("samples", 0)
            merged["frames"] += counts.get("frames", 0)
            for name, count in counts.get("identities", {}).items():
                identities[name] = identities.get(name, 0) + count
        if identities:
            merged["identities"] = dict(sorted(identities.items()))
        splits[split] = merged
    for rank, record in enumerate(records):
        with np.load(part_folder(out, rank) / "pca.npz") as sums:
            pca_sum += sums["total"]
            pca_outer += sums["outer"]
        pca_count += record["pca_count"]
    return _publish(out, settings, {"splits": splits, "pca_sums": (pca_sum, pca_outer, pca_count)}, partials)


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
        "audio": not settings.video_only,  # false: silence stands in for the sound; stage 2 only
    }


def _check_same_settings(
    out: Path, layout: str, settings: PrepareSettings, window: int, stride: int, sources: list[Source]
) -> None:
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
    shifted = {s.id: s.audio_offset for s in sources if s.audio_offset}
    if shifted:  # an entry only when used, so folders prepared before --av-offsets existed still match
        wanted["av_offsets"] = dict(sorted(shifted.items()))
    if settings.video_only:  # likewise
        wanted["video_only"] = True
    path = out / "work" / "settings.json"
    if path.exists():
        found = json.loads(path.read_text())
        changed = sorted(k for k in {*wanted, "av_offsets", "video_only"} if found.get(k) != wanted.get(k))
        if changed:
            raise TalkfaceError(
                f"{out} was prepared with other settings ({', '.join(changed)} differ); "
                "use a new --out folder or delete this one"
            )
    else:
        write_json_atomic(path, wanted)


def _log(message: str) -> None:
    print(f"talkface prepare: {message}", file=sys.stderr, flush=True)
