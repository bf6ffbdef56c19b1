"""Acceptance of the lip-sync expert (issue 14) on the unseen identities of the real corpus, all
measured through `talkface sync` with the released expert:

- every test clip with its own audio: the estimated offset is 0 ± 1 frame for ≥ 90 % of the clips
  that are in step; the three whose sound is 2-3 frames late (configs/data/corpus_av_offsets.csv,
  confirmed by stage 1 in test_av_offsets_real.py) are found at that offset;
- with its audio (moved into step) shifted by k ∈ {−6, −3, +3, +6} frames (k > 0: the sound
  delayed): the estimate is k ± 1 for ≥ 80 % of clip × shift pairs;
- LSE-C with the clip's own audio is higher than with another clip's audio for ≥ 90 % of clips.

The test clips are the files of speakers/ whose identity identities.csv puts in `test` (never
trained on). Each clip is face-tracked twice (its own audio; then the four shifts and the other
clip's audio in one call), in this process, once for all the tests (about a minute).
TALKFACE_SYNC_EXPERT=PATH measures another expert (a .ckpt while training one).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from talkface.cli import main
from talkface.media.video_io import read_video
from talkface.media.wav_writer import write_wav
from talkface.prepare.av_offsets import AvOffsetTable
from tests.helpers.real_data import CORPUS, needs_corpus

SHIFTS = (-6, -3, 3, 6)
# Another expert to measure with (a .ckpt while training one); default: the released expert.
EXPERT = ["--expert", os.environ["TALKFACE_SYNC_EXPERT"]] if os.environ.get("TALKFACE_SYNC_EXPERT") else []
SAMPLES_PER_FRAME = 640  # 16 kHz at 25 fps
OFFSETS_TABLE = Path(__file__).resolve().parents[1] / "configs" / "data" / "corpus_av_offsets.csv"


def listed_offsets() -> dict[str, int]:
    """The corpus clips whose sound is out of step, by file name: frames late."""
    return dict(AvOffsetTable.read(OFFSETS_TABLE).rows)


def test_clips() -> list:
    table = CORPUS / "identities.csv"
    if not table.is_file():
        return []
    with open(table, newline="") as file:
        rows = list(csv.DictReader(file))
    return sorted(
        CORPUS / row["file"] for row in rows if row["split"] == "test" and row["file"].startswith("speakers/")
    )


test_clips.__test__ = False  # a helper, not a test


def shifted(audio: np.ndarray, frames: int) -> np.ndarray:
    """The same length of audio, delayed by `frames` video frames (advanced when negative)."""
    samples = abs(frames) * SAMPLES_PER_FRAME
    silence = np.zeros(samples, np.float32)
    if frames > 0:
        return np.concatenate([silence, audio[:-samples]])
    return np.concatenate([audio[samples:], silence])


def sync_json(argv: list[str]) -> dict:
    """`talkface sync ... --json`, run in this process (one torch import for every clip)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["sync", *argv, *EXPERT, "--json"])
    assert code == 0, f"talkface sync {' '.join(argv)} failed"
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    """`talkface sync` on every test clip: its own audio, the four shifts, another clip's audio."""
    if not CORPUS.is_dir():
        pytest.skip(f"real corpus not present at {CORPUS}")
    folder = tmp_path_factory.mktemp("sync")
    clips = test_clips()
    assert len(clips) >= 8, f"expected the test identities' clips of {CORPUS}/speakers"
    late = listed_offsets()
    # Each clip's sound moved into step with its picture (most need no move), then shifted by k.
    sounds = {clip: shifted(read_video(clip).audio, -late.get(clip.name, 0)) for clip in clips}
    own, shifts, other = {}, {}, {}
    for index, clip in enumerate(clips):
        audio = sounds[clip]
        own[clip.name] = sync_json([str(clip)])["results"][0]  # the file's own sound, as it is
        recordings = []
        for k in SHIFTS:
            recordings.append(write_wav(folder / f"{clip.stem}_{k:+d}.wav", shifted(audio, k), 16000))
        donor = sounds[clips[(index + 1) % len(clips)]]  # another clip's speech, looped to cover this one
        looped = np.tile(donor, -(-len(audio) // len(donor)))[: len(audio)]
        recordings.append(write_wav(folder / f"{clip.stem}_other.wav", looped, 16000))
        results = sync_json([str(clip), *[arg for path in recordings for arg in ("--audio", str(path))]])
        for k, result in zip(SHIFTS, results["results"][:4], strict=True):
            shifts[(clip.name, k)] = result
        other[clip.name] = results["results"][4]
    print(f"\nexpert: {next(iter(own.values()))['expert']}")
    print(f"{'clip':40s} offset  LSE-D  LSE-C | " + " ".join(f"{k:+d}" for k in SHIFTS) + " | other LSE-C")
    for name, result in own.items():
        found_shifts = " ".join(f"{shifts[(name, k)]['offset_frames']:+d}" for k in SHIFTS)
        print(
            f"{name:40s} {result['offset_frames']:+4d}  {result['lse_d']:.3f}  {result['lse_c']:.3f} | "
            f"{found_shifts} | {other[name]['lse_c']:.3f}"
        )
    return {"own": own, "shifts": shifts, "other": other, "late": late}


# The three clips of configs/data/corpus_av_offsets.csv carry sound 2-3 frames late: the expert
# finds that offset with every shift (each shifted estimate of the file's own sound is exactly that
# offset + k), and the released stage 1, a different model that never saw these people, predicts
# mouth openings that match the real ones best with the sound 3 frames late on exactly these clips
# and at lag 0 (± 1) on the other seven (test_av_offsets_real.py). Measured on the files as they
# are, they are the 30 % that the expert "misses" (70 % at 0 ± 1, 70 % of the shifted pairs at
# k ± 1, 2026-11-30); the criteria below are the thresholds on recordings in step.


@pytest.mark.slow
def test_real_video_with_its_own_audio_is_in_sync(measured):
    in_step = {name: r for name, r in measured["own"].items() if name not in measured["late"]}
    in_sync = np.mean([abs(r["offset_frames"]) <= 1 for r in in_step.values()])
    print(f"offset 0 ± 1 with own audio: {in_sync:.0%} of the {len(in_step)} clips in step (needs ≥ 90 %)")
    assert len(in_step) >= 7 and in_sync >= 0.9


@pytest.mark.slow
def test_clips_whose_sound_is_late_are_found_at_their_offset(measured):
    found = {name: measured["own"][name]["offset_frames"] for name in measured["late"] if name in measured["own"]}
    assert found and all(abs(found[name] - measured["late"][name]) <= 1 for name in found), found


@pytest.mark.slow
def test_shifted_audio_is_found_at_its_shift(measured):
    found = np.mean([abs(r["offset_frames"] - k) <= 1 for (_, k), r in measured["shifts"].items()])
    print(f"shift k ± 1 found: {found:.0%} of {len(measured['shifts'])} clip × shift pairs (needs ≥ 80 %)")
    assert found >= 0.8


@pytest.mark.slow
def test_shifts_move_the_estimate_by_exactly_the_shift(measured):
    """What the expert must get right whatever offset a recording carries: shifting its audio by k
    moves the estimate by k (± 1) from the estimate with the unshifted audio."""
    own, shifts, late = measured["own"], measured["shifts"], measured["late"]
    moved = np.mean(
        [
            abs(r["offset_frames"] - (own[name]["offset_frames"] - late.get(name, 0)) - k) <= 1
            for (name, k), r in shifts.items()
        ]
    )
    assert moved >= 0.8


@pytest.mark.slow
def test_own_audio_scores_a_higher_confidence_than_another_clips(measured):
    own, other = measured["own"], measured["other"]
    separated = np.mean([own[name]["lse_c"] > other[name]["lse_c"] for name in own])
    print(f"LSE-C own > other clip's audio: {separated:.0%} of {len(own)} clips (needs ≥ 90 %)")
    assert separated >= 0.9


@pytest.mark.slow
@needs_corpus()
def test_the_expert_orders_real_video_above_generated_above_a_still_photo(tmp_path, capsys):
    """LSE-C on the unseen identities, each clip's first frame as the photo and its own audio:
    the real video, the released models' video (when they are installed) and the photo held
    still ("copy the photo", no motion). A person orders them real > model > still."""
    from PIL import Image

    from callbacks.video_samples import write_clip
    from talkface.weights import GENERATOR, LANDMARK

    rows = {"real video": [], "released model": [], "copy the photo": []}
    with_model = LANDMARK.is_file() and GENERATOR.is_file()
    for clip in test_clips():
        video = read_video(clip)
        real = sync_json([str(clip)])
        expert = real["expert"]
        rows["real video"].append(real["results"][0]["lse_c"])
        still = write_clip(
            tmp_path / f"{clip.stem}_still.mp4", np.repeat(video.frames[:1], len(video.frames), 0), video.audio
        )
        rows["copy the photo"].append(sync_json([str(still)])["results"][0]["lse_c"])
        if with_model:
            photo, speech = tmp_path / f"{clip.stem}.png", tmp_path / f"{clip.stem}.wav"
            Image.fromarray(video.frames[0]).save(photo)
            write_wav(speech, video.audio, 16000)
            generated = tmp_path / f"{clip.stem}_generated.mp4"
            argv = ["generate", "--image", str(photo), "--audio", str(speech), "--out", str(generated), "--quiet"]
            assert main(argv) == 0, capsys.readouterr().err
            capsys.readouterr()
            rows["released model"].append(sync_json([str(generated)])["results"][0]["lse_c"])
    means = {name: float(np.mean(values)) for name, values in rows.items() if values}
    with capsys.disabled():
        print(f"\nLSE-C on the unseen identities, measured by {expert}:")
        for name, value in means.items():
            print(f"  {name:16s} {value:.3f}  ({len(rows[name])} clips)")
    assert means["real video"] > means["copy the photo"]
    if with_model:
        assert means["real video"] > means["released model"] > means["copy the photo"]
