"""Run every measurement of `talkface benchmark` on the built-in sample and collect one result dict."""

from __future__ import annotations

import inspect
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from talkface.benchmark import generation, preparation, training
from talkface.benchmark.machine import describe_machine
from talkface.generation.precision import native_bf16


@dataclass(frozen=True)
class BenchmarkSettings:
    workdir: Path
    words: int = 20
    clips_per_word: int = 6  # split 4 train / 1 val / 1 test
    workers: int = 2  # preparation processes (and decode / naive pipelines alike)
    naive_clips: int = 12  # the naive per-frame pipeline is slow: a subset of the clips
    loader_workers: int = 2
    train_steps: int = 10
    sizes: tuple[int, ...] = (128, 256)
    short_seconds: float = 10.0
    long_seconds: float = 120.0
    device: str = "auto"  # auto: cuda when present, else cpu


def run_benchmark(settings: BenchmarkSettings, say=print) -> dict:
    device = settings.device if settings.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    work = settings.workdir
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "machine": describe_machine(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
    }
    started = time.perf_counter()

    from talkface.sample import build_sample

    raw = work / "sample"
    train_clips = max(settings.clips_per_word - 2, 1)
    say(f"building the sample: {settings.words} words x {settings.clips_per_word} clips")
    build_sample(
        raw,
        num_words=settings.words,
        splits={"train": train_clips, "val": 1, "test": 1},
        seed=0,
        workers=settings.workers,
        progress=False,
    )
    clips = preparation.clips_of(raw)

    say(f"preparation: pure decoding of {len(clips)} clips ({settings.workers} processes)")
    decode = preparation.decode_rate(clips, settings.workers)
    say("preparation: talkface prepare (dlib, detect once then track)")
    prepared = work / f"prepared_{int(time.time())}"
    prepare = preparation.prepare_rate(raw, prepared, settings.workers)
    say(f"preparation: naive pipeline, detector on every frame ({min(settings.naive_clips, len(clips))} clips)")
    naive = preparation.naive_rate(clips[: settings.naive_clips], settings.workers)
    say("preparation: where the time goes (talkface prepare in one process, each stage timed)")
    profile = preparation.stage_profile(raw, work / f"profiled_{int(time.time())}")
    say("preparation: the floor (decoding and one landmark fit per frame, nothing else)")
    floor = preparation.landmark_fit_floor(clips)
    results["preparation"] = {
        "decode_only": decode,
        "talkface_prepare": prepare,
        "naive_per_frame_detection": naive,
        "profile_one_process": profile,
        "landmark_fit_floor": floor,
    }

    results["training"] = {}
    accelerator, precision = ("gpu", "bf16-mixed") if device.startswith("cuda") else ("cpu", "32-true")
    for stage, (model_class, kwargs, batch_size) in training.STAGES.items():
        say(f"{stage}: loader ({settings.loader_workers} workers) and training step ({accelerator}, {precision})")
        loader, batches = training.loader_rate(prepared, model_class, batch_size, settings.loader_workers)
        extra = {"num_words": settings.words} if "num_words" in inspect.signature(model_class).parameters else {}
        step = training.training_rate(
            model_class(**kwargs, **extra), batches, settings.train_steps, accelerator, precision
        )
        results["training"][stage] = {
            "loader": loader,
            "train_step": step,
            "loader_over_step": round(loader["samples_per_second"] / step["samples_per_second"], 2),
        }
        if accelerator == "cpu" and native_bf16(torch.device("cpu")):  # `--trainer.precision bf16-mixed` too
            say(f"{stage}: training step (cpu, bf16-mixed)")
            fast = training.training_rate(
                model_class(**kwargs, **extra), batches, settings.train_steps, accelerator, "bf16-mixed"
            )
            results["training"][stage]["train_step_bf16_mixed"] = fast
            ratio = loader["samples_per_second"] / fast["samples_per_second"]
            results["training"][stage]["loader_over_step_bf16_mixed"] = round(ratio, 2)

    results["generation"] = _generation(settings, work, device, say)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    return results


def _generation(settings: BenchmarkSettings, work: Path, device: str, say) -> dict:
    import cv2
    from skimage import data

    from talkface.sample.speech import synthesize

    image = work / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    speech = synthesize(
        "Talking faces from landmarks, measured on this machine, frame by frame.", voice="en-us+m3", rate=150
    ).audio
    short = generation.speech_file(work, settings.short_seconds, speech)
    long = generation.speech_file(work, settings.long_seconds, speech)
    results = {"photo": "skimage astronaut, 512x512, pasted back", "device": device}
    for size in settings.sizes:
        landmark, generator = generation.save_models(work, size)
        say(f"generation at {size} px: {settings.short_seconds:.0f} s of audio")
        run = generation.run_generation(image, short, landmark, generator, work / f"out_{size}_short.mp4", device)
        results[f"{size}px"] = {f"{settings.short_seconds:.0f}s": run}
        if size == min(settings.sizes):
            say(f"generation at {size} px: {settings.long_seconds:.0f} s of audio (peak memory)")
            run = generation.run_generation(image, long, landmark, generator, work / f"out_{size}_long.mp4", device)
            results[f"{size}px"][f"{settings.long_seconds:.0f}s"] = run
    released = _released_models()
    if released:
        say(f"generation with the released models: {settings.short_seconds:.0f} s of audio")
        run = generation.run_generation(image, short, *released, work / "out_released_short.mp4", device)
        results["released"] = {f"{settings.short_seconds:.0f}s": run}
    return results


def _released_models() -> tuple[Path, Path] | None:
    """The shipped models (what `talkface generate` uses by default), when this install has them."""
    from talkface.errors import TalkfaceError
    from talkface.weights import released_checkpoints

    try:
        return released_checkpoints()
    except TalkfaceError:
        return None
