"""Build the built-in sample dataset: synthetic LRW clips (talking face + speech) on disk.

Layout, exactly LRW's: `OUT/WORD/{train,val,test}/WORD_00001.mp4` with `WORD_00001.txt` beside
each clip (29 frames at 25 fps, 256², 16 kHz mono audio inside, the word centred). Two JSON files
sit at the root, where LRW tools never look: `sample_info.json` (the settings) and `visemes.json`
(per clip: the mouth trajectory that drove the face, and the clip's voice and look).

The folder is the sample's own: a new or empty one gets the marker `.talkface-sample`, and a
folder holding other files (say a real LRW tree) is refused rather than written into.

Every clip draws its randomness from `default_rng([seed, word index, split index, clip number])`,
so a clip's bytes depend on nothing else: not on the other words, nor on the number of workers.
Files are written atomically and complete clips are skipped, so an interrupted build resumes.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

import talkface
from talkface import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from talkface.errors import TalkfaceError
from talkface.outputs import check_claimable, check_output_folder, claim
from talkface.sample.face_warp import FaceRig, astronaut_rig, photo_rig, random_look
from talkface.sample.speech import ACCENTS, VARIANTS, Speech, synthesize
from talkface.sample.visemes import viseme_track

VOCABULARY_FILE = Path(__file__).with_name("lrw_words.txt")
SPLITS = ("train", "val", "test")
NUM_FRAMES = 29  # LRW: 1.16 s at 25 fps
NUM_SAMPLES = NUM_FRAMES * SAMPLES_PER_FRAME  # 18 560
MAX_WORD_SECONDS = 1.0  # leave some silence on both sides of the word
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
INFO_FILE, VISEMES_FILE = "sample_info.json", "visemes.json"
# Written first into a new or empty folder: a folder without it (or a sample_info.json, from
# versions before the marker) that holds files is not a sample, and is never written into.
MARKER = ".talkface-sample"
FORMAT = "talkface-sample/1"


@lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """LRW's 500 words, sorted (shipped inside the package)."""
    return tuple(line.strip() for line in VOCABULARY_FILE.read_text().splitlines() if line.strip())


def choose_words(num_words: int = 10, words: list[str] | None = None) -> list[str]:
    """Explicit words (checked against the vocabulary), or `num_words` spread over the alphabet."""
    vocab = vocabulary()
    if words:
        chosen = []
        for word in words:
            word = word.strip().upper()
            if word not in vocab:
                close = difflib.get_close_matches(word, vocab, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise TalkfaceError(f"{word!r} is not one of LRW's 500 words{hint}")
            if word not in chosen:
                chosen.append(word)
        return chosen
    if not 1 <= num_words <= len(vocab):
        raise TalkfaceError(f"the number of words must be between 1 and {len(vocab)}, got {num_words}")
    picks = np.unique(np.round(np.linspace(0, len(vocab) - 1, num_words)).astype(int))
    return [vocab[i] for i in picks]


def split_counts(clips_per_word: int) -> dict[str, int]:
    """Clips per word per split, LRW-like: about 60/20/20, at least one val and test clip from 3."""
    if clips_per_word < 1:
        raise TalkfaceError(f"clips per word must be at least 1, got {clips_per_word}")
    held_out = max(1, round(0.2 * clips_per_word)) if clips_per_word >= 3 else 0
    return {"train": clips_per_word - 2 * held_out, "val": held_out, "test": held_out}


@dataclass(frozen=True)
class ClipJob:
    word: str
    split: str
    number: int  # 1-based, per word and split, as in LRW's file names
    seed: int

    @property
    def clip_id(self) -> str:
        return f"{self.word}/{self.split}/{self.word}_{self.number:05d}"

    @property
    def rng_key(self) -> list[int]:
        return [self.seed, vocabulary().index(self.word), SPLITS.index(self.split), self.number]


@dataclass
class SampleSummary:
    out: Path
    words: int
    clips: int
    built: int
    skipped: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"sample: {self.clips} clips of {self.words} words in {self.out} "
            f"({self.built} built, {self.skipped} already there) in {self.seconds:.1f} s"
        )


def build_sample(
    out: str | Path,
    num_words: int = 10,
    words: list[str] | None = None,
    clips_per_word: int = 5,
    splits: dict[str, int] | None = None,
    seed: int = 0,
    faces_dir: str | Path | None = None,
    workers: int = 2,
    progress: bool = True,
) -> SampleSummary:
    """Write the sample into `out` (LRW layout) and return what was done.

    `splits` gives clips per word per split (e.g. {"train": 3, "val": 1, "test": 1}); without it
    `clips_per_word` is divided about 60/20/20. `faces_dir` adds face photos to the astronaut.
    With `workers` > 1 the clips are made in worker processes started by a forkserver, so a
    script calling this needs the usual `if __name__ == "__main__":` guard.
    """
    started = time.perf_counter()
    out = Path(out)
    chosen = choose_words(num_words, words)
    counts = _check_splits(splits if splits is not None else split_counts(clips_per_word))
    if int(seed) < 0:
        raise TalkfaceError(f"the seed must be >= 0, got {seed}")
    check_output_folder(out)
    check_claimable(out, MARKER, "sample", also_ours=(INFO_FILE,))
    faces = _face_sources(faces_dir)
    info = {
        "format": FORMAT,
        "talkface_version": talkface.__version__,
        "seed": int(seed),
        "words": chosen,
        "splits": counts,
        "faces": [{"name": name, "sha1": digest} for name, _, digest in faces],
        "frames": NUM_FRAMES,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "size": [256, 256],
        "voices": {"accents": list(ACCENTS), "variants": list(VARIANTS)},
    }
    previous = _check_existing(out, info)
    claim(out, MARKER, "sample")  # only now: a refused build leaves nothing behind

    jobs = [
        ClipJob(word, split, number, int(seed))
        for word in chosen
        for split in SPLITS
        for number in range(1, counts[split] + 1)
    ]
    to_render = sum(not _clip_files_exist(out, job) for job in jobs)  # the rest only re-synthesise
    context = _pool_context() if workers > 1 and to_render > 1 else None  # starts its server early
    rigs = [_photo_rig(path, digest) for _, path, digest in faces]  # landmarks found once, here
    records: dict[str, dict] = {}
    built = 0
    with tqdm(total=len(jobs), desc="sample", unit="clip", disable=not progress) as bar:
        for clip_id, record, was_built in _make_clips(jobs, out, rigs, workers, context):
            records[clip_id] = record
            built += was_built
            bar.update()

    if previous:  # a resumed or extended build: the folder holds the union
        info["words"] = sorted(set(previous.get("words", [])) | set(chosen))
        info["splits"] = {s: max(n, int(previous.get("splits", {}).get(s, 0))) for s, n in counts.items()}
    _write_json(out / INFO_FILE, info)
    existing = _read_json(out / VISEMES_FILE) or {}
    existing.update(records)
    _write_json(out / VISEMES_FILE, existing)
    return SampleSummary(out, len(chosen), len(jobs), built, len(jobs) - built, time.perf_counter() - started)


def _make_clips(jobs: list[ClipJob], out: Path, rigs: list[FaceRig], workers: int, context):
    """Yield `make_clip` results, in this process or from `workers` processes (any order)."""
    if context is None:
        _set_rigs(rigs)
        yield from (make_clip(job, out) for job in jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(rigs,)) as pool:
        futures = [pool.submit(make_clip, job, out) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:  # an error or Ctrl-C: drop the clips not started yet
            pool.shutdown(wait=True, cancel_futures=True)
            raise


# ---- one clip ---------------------------------------------------------------------------------


def make_clip(job: ClipJob, out: Path) -> tuple[str, dict, bool]:
    """Synthesise one clip; render and write it unless its files are already there.

    Returns the clip id, its record for visemes.json, and whether it was written.
    """
    rng = np.random.default_rng(job.rng_key)
    voice = f"{ACCENTS[rng.integers(len(ACCENTS))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
    rate, pitch, pitch_range = int(rng.integers(140, 201)), int(rng.integers(25, 76)), int(rng.integers(30, 81))
    look = random_look(rng)
    face_index = int(rng.integers(len(_worker_rigs)))
    loudness = float(rng.uniform(0.45, 0.85))
    noise_db = float(rng.uniform(-62.0, -48.0))
    noise_seed = int(rng.integers(2**31))
    voice_seed = int(rng.integers(2**31))

    speech = synthesize(job.word.lower(), voice, rate, pitch, pitch_range, seed=voice_seed)
    while speech.word_duration > MAX_WORD_SECONDS and rate < 400:  # keep silence around the word
        rate += 40
        speech = synthesize(job.word.lower(), voice, rate, pitch, pitch_range, seed=voice_seed)
    audio, offset = place_word(speech, loudness, noise_db, np.random.default_rng(noise_seed))
    track = viseme_track(speech.phonemes, NUM_FRAMES, offset=offset)
    word_start, word_end = speech.word_start + offset, speech.word_end + offset

    mp4, txt = _clip_files(out, job)
    face = _worker_rigs[face_index]
    settings = {
        "voice": voice,
        "rate_wpm": rate,
        "pitch": pitch,
        "pitch_range": pitch_range,
        "loudness": round(loudness, 4),
        "noise_db": round(noise_db, 2),
        "face": face.name,
        "look": look.as_dict(),
    }
    built = not _clip_files_exist(out, job)
    if built:
        frames = face.render_clip(track.openness, track.spread, track.rounding, look, FPS)
        from talkface.media import write_mp4  # PyAV: imported where it is used

        write_mp4(mp4, frames, audio)
        _write_text(txt, lrw_text(job.word, speech.word_duration, voice, rate))
    record = {
        "word": job.word,
        "split": job.split,
        "word_start": round(word_start, 4),
        "word_end": round(word_end, 4),
        "phonemes": [[p.name, round(p.start + offset, 4), round(p.end + offset, 4)] for p in speech.phonemes],
        **track.as_dict(),
        "settings": settings,
    }
    return job.clip_id, record, built


def _clip_files(out: Path, job: ClipJob) -> tuple[Path, Path]:
    folder = out / job.word / job.split
    stem = f"{job.word}_{job.number:05d}"
    return folder / f"{stem}.mp4", folder / f"{stem}.txt"


def _clip_files_exist(out: Path, job: ClipJob) -> bool:
    """A clip is complete when both files exist (each is written atomically, the .txt last)."""
    return all(path.is_file() for path in _clip_files(out, job))


def place_word(speech: Speech, loudness: float, noise_db: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The word centred in the 1.16 s clip over faint room noise; returns (audio, offset in s).

    `offset` is where espeak's time 0 lands in the clip.
    """
    centre = (speech.word_start + speech.word_end) / 2
    start = int(round((NUM_SAMPLES / SAMPLE_RATE / 2 - centre) * SAMPLE_RATE))
    voice = speech.audio * (loudness / max(1e-6, float(np.abs(speech.audio).max())))
    audio = np.zeros(NUM_SAMPLES, np.float32)
    lo, hi = max(0, start), min(NUM_SAMPLES, start + len(voice))
    audio[lo:hi] = voice[lo - start : hi - start]
    # Room tone: white noise, gently low-passed (a 3-tap average) so it is not a pure hiss.
    noise = rng.standard_normal(NUM_SAMPLES + 2).astype(np.float32)
    noise = (noise[:-2] + noise[1:-1] + noise[2:]) / np.sqrt(3.0)
    audio += noise * np.float32(10 ** (noise_db / 20))
    return np.clip(audio, -1.0, 1.0), start / SAMPLE_RATE


def lrw_text(word: str, duration: float, voice: str, rate: int) -> str:
    """LRW's .txt: `Text:` and `Conf:`, then `Duration:` on the fifth line (LRW readers take
    the word's length from there); the fourth line says where the clip came from."""
    return (
        f"Text:  {word}\n"
        f"Conf:  1.0\n"
        f"\n"
        f"Source:  talkface sample, espeak-ng {voice} at {rate} wpm\n"
        f"Duration: {duration:.2f} seconds\n"
    )


# ---- faces, per worker process ------------------------------------------------------------------

_worker_rigs: list[FaceRig] = []


def _set_rigs(rigs: list[FaceRig]) -> None:
    global _worker_rigs
    _worker_rigs = list(rigs)


def _init_worker(rigs: list[FaceRig]) -> None:
    """A pool worker: gets the face rigs, computes on one thread (the workers are the parallelism)."""
    import cv2
    import torch

    _set_rigs(rigs)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _pool_context() -> multiprocessing.context.BaseContext:
    """Workers come from a fresh forkserver, never forked from the caller: a process that has
    used OpenCV's or OpenMP's thread pools hangs its forked children when they use them again.
    The server imports the heavy modules once; each worker is then a cheap fork of it."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["talkface.sample.builder", "talkface.media", "torchaudio"])
    forkserver.ensure_running()  # its imports (~2 s) overlap with the caller's face detection
    return context


@cache
def _photo_rig(path: Path | None, digest: str = "") -> FaceRig:
    """The rig of a photo (None: the astronaut), kept per path and content."""
    if path is None:
        return astronaut_rig()
    from talkface.media import read_image

    return photo_rig(read_image(path), name=path.name)


def _face_sources(faces_dir: str | Path | None) -> list[tuple[str, Path | None, str]]:
    """(name, path or None for the astronaut, sha1) of every face; photos are checked here."""
    faces: list[tuple[str, Path | None, str]] = [("astronaut", None, "skimage.data.astronaut")]
    if faces_dir is None:
        return faces
    folder = Path(faces_dir)
    if not folder.is_dir():
        raise TalkfaceError(f"faces folder {folder} does not exist (give a folder of face photos)")
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise TalkfaceError(f"{folder} holds no photos ({', '.join(IMAGE_SUFFIXES)})")
    for path in photos:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        _photo_rig(path.resolve(), digest)  # raises NoFaceError naming the photo
        faces.append((path.name, path.resolve(), digest))
    return faces


# ---- checks and files -------------------------------------------------------------------------


def _check_splits(counts: dict[str, int]) -> dict[str, int]:
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise TalkfaceError(f"unknown split(s) {', '.join(sorted(unknown))}: use {', '.join(SPLITS)}")
    counts = {split: int(counts.get(split, 0)) for split in SPLITS}
    if any(n < 0 for n in counts.values()) or sum(counts.values()) == 0:
        raise TalkfaceError(f"clips per split must be >= 0 and not all 0, got {counts}")
    return counts


def _check_existing(out: Path, info: dict) -> dict | None:
    """Refuse to mix clips made with other settings into an existing sample folder; returns
    the folder's previous settings, if any."""
    if out.exists() and not out.is_dir():
        raise TalkfaceError(f"{out} exists and is not a folder")
    previous = _read_json(out / INFO_FILE)
    if previous is None:
        return None
    for key in ("format", "seed", "faces"):
        if previous.get(key) != info[key]:
            raise TalkfaceError(
                f"{out} holds a sample built with another {key} ({previous.get(key)!r}): "
                "use a new --out folder, or the same settings to complete it"
            )
    return previous


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise TalkfaceError(f"{path} is unreadable ({error}): delete it and re-run") from None


def _write_json(path: Path, data: dict) -> None:
    _write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file and `os.replace`: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)
