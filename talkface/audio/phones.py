"""Phone labels for every video frame, from PocketSphinx's speaker-independent English acoustic model.

Why: stage 1 learns the sound→mouth mapping from about 30 people, which is too few to learn what
a phone sounds like in a voice it has never heard. PocketSphinx's generic US-English acoustic
model (shipped inside its wheel, so nothing is downloaded) was trained on far more speech and
voices than any talking-face corpus here. Its phone decoding
alone, fed to a linear model, predicts the mouth opening of the 8 unseen test people better
(Pearson 0.44) than a mel-spectrogram network trained on our corpus (0.37): see MODEL_CARD.md.

The audio is decoded in fixed blocks of `BLOCK` video frames from the start of the recording, in
training (a prepared sample is one block) and in generation alike, so the decoder always sees the
same amount of context. Each video frame gets the fraction of its four 10 ms steps given to each
phone; frame t's window holds frames t - CONTEXT//2 .. t + CONTEXT//2 (edge frames repeated).
A stage 1 reads `phone_context` rows of that window, moved `phone_offset` frames later (`rows_read`):
its LSTM runs forwards, so it has already seen the past rows, and only the later ones are news.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np

from talkface import FPS, SAMPLE_RATE
from talkface.checks import check_number
from talkface.errors import TalkfaceError

PHONES = tuple(
    "SIL AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)
BLOCK = 29  # video frames decoded together: the length of a prepared training sample
CONTEXT = 9  # video frames in each frame's window of phone rows (4 each side): the most a stage 1 reads
STEP = 160  # samples per 10 ms decoder step at 16 kHz
STEPS_PER_FRAME = 4  # decoder steps per 25 fps video frame
_INDEX = {phone: i for i, phone in enumerate(PHONES)}
_LOCK = threading.Lock()


def check_phone_window(context, offset) -> None:
    """`context` frames of phones moved `offset` frames later must be an odd window inside the data's."""
    check_number("model.init_args.phone_context", context, whole=True)
    check_number("model.init_args.phone_offset", offset, whole=True)
    if not (1 <= context <= CONTEXT and context % 2 == 1):
        raise TalkfaceError(
            f"model.init_args.phone_context must be an odd whole number from 1 to {CONTEXT} (frames of phones), "
            f"got {context!r}"
        )
    reach = (CONTEXT - context) // 2
    if abs(offset) > reach:
        raise TalkfaceError(
            f"model.init_args.phone_offset must be within ±{reach} for phone_context {context} (the data's windows "
            f"reach {CONTEXT // 2} frames each side), got {offset!r}"
        )


def rows_read(windows, context: int, offset: int = 0):
    """(..., CONTEXT, P) phone windows → the (..., context, P) rows a stage 1 reads: frames
    t - context//2 + offset .. t + context//2 + offset of each frame t."""
    start = (CONTEXT - context) // 2 + offset
    return windows[..., start : start + context, :]


def load_recognizer() -> None:
    """Load the acoustic model now (~0.1 s, once per process), so the first frame never waits for it."""
    with _LOCK:
        _decoder()


@lru_cache(maxsize=1)
def _decoder():
    try:
        from pocketsphinx import Decoder, get_model_path
    except ImportError as error:  # a broken install, not a user mistake
        raise TalkfaceError("pocketsphinx is not installed: pip install -e . -c requirements/lock.txt") from error
    model = get_model_path()
    return Decoder(
        hmm=os.path.join(model, "en-us", "en-us"),
        allphone=os.path.join(model, "en-us", "en-us-phone.lm.bin"),
        lw=2.0,
        beam=1e-20,
        pbeam=1e-20,
        loglevel="FATAL",
    )


def decode_block(audio: np.ndarray) -> np.ndarray:
    """(N,) float audio in [-1, 1] at 16 kHz → (N // 160,) phone index per 10 ms step."""
    pcm = (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).astype("<i2").tobytes()
    labels = np.zeros(len(audio) // STEP, np.int64)  # SIL
    with _LOCK:  # one decoder per process; `talkface serve` may generate from two threads
        decoder = _decoder()
        # The feature front end adapts its mean from utterance to utterance: reset it, so a block's
        # phones never depend on what was decoded before (a fresh decoder's result, every time).
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        segments = [(segment.word, segment.start_frame, segment.end_frame) for segment in decoder.seg()]
    for phone, start, end in segments:
        if phone in _INDEX:  # fillers (+NSN+, +SPN+ ...) count as silence
            labels[start : end + 1] = _INDEX[phone]
    return labels


def phone_labels(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """(num_frames * 4,) uint8: the phone of every 10 ms step (a compact form to cache: 116 bytes a
    29-frame sample). The audio is cut or zero-padded to `num_frames` frames and decoded block by block.
    """
    samples = num_frames * SAMPLE_RATE // FPS
    audio = np.asarray(audio, np.float32).reshape(-1)[:samples]
    audio = np.pad(audio, (0, samples - len(audio)))
    block_samples = BLOCK * SAMPLE_RATE // FPS
    blocks = [decode_block(audio[start : start + block_samples]) for start in range(0, samples, block_samples)]
    return np.concatenate(blocks).astype(np.uint8)


def rows_from_labels(labels: np.ndarray) -> np.ndarray:
    """(T * 4,) step labels → (T, len(PHONES)) float32: the share of each frame's steps given to each phone."""
    frames = len(labels) // STEPS_PER_FRAME
    rows = np.zeros((frames, len(PHONES)), np.float32)
    np.add.at(rows, (np.repeat(np.arange(frames), STEPS_PER_FRAME), labels.astype(np.int64)), 1.0 / STEPS_PER_FRAME)
    return rows


def phone_rows(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """(num_frames, len(PHONES)) float32 phone shares of every frame of `audio`."""
    return rows_from_labels(phone_labels(audio, num_frames))


def phone_windows(rows: np.ndarray, frames: np.ndarray | None = None, total: int | None = None) -> np.ndarray:
    """(T, P) phone rows → (len(frames), CONTEXT, P): the rows t - CONTEXT//2 .. t + CONTEXT//2 around
    each frame t (default: every row), clamped to the recording's `total` frames (default T), so the
    edge rows repeat at both ends."""
    frames = np.arange(len(rows)) if frames is None else np.asarray(frames)
    total = len(rows) if total is None else total
    half = CONTEXT // 2
    return rows[np.clip(frames[:, None] + np.arange(-half, half + 1), 0, total - 1)]
