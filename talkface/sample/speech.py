"""Speak a word with espeak-ng (from the `espeakng-loader` wheel) and keep its phoneme timings.

espeak-ng's command line gives no timings here, so its C API is driven through ctypes: with
phoneme events on, the synth callback receives the audio together with one event per phoneme
(its name and its start in ms) and one per word.

The library keeps state from one utterance to the next (pitch flutter, glottal phase, random
breath noise), so the same word spoken twice in one process comes out slightly different, and a
clip would depend on which clips its process made before. To be reproducible, each utterance is
spoken in a short-lived forked child of a process whose espeak was initialised but never used:
every utterance starts from the same state, in any process, in any order. (Where `os.fork` does
not exist, speech is made in-process: right, but not byte-reproducible.)
"""

from __future__ import annotations

import ctypes
import os
import pickle
import threading
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from talkface import SAMPLE_RATE
from talkface.errors import TalkfaceError

# Accents and voice variants (`lang+variant`) bundled with espeakng-loader's data.
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-us-nyc", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")

# espeak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END, _EVENT_PHONEME = 0, 1, 5, 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
PAUSE_PHONEMES = ("_", "_:", "_!", "_;", "_^_", "||", "|")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of the output
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Phoneme:
    name: str  # espeak mnemonic without stress marks ("aU", "b", "_:" for a pause)
    start: float  # seconds from the start of the audio
    end: float


@dataclass
class Speech:
    """One synthesised word: 16 kHz mono audio, its phonemes and where the spoken word lies."""

    audio: np.ndarray  # float32 in [-1, 1] at `sample_rate`
    sample_rate: int
    phonemes: list[Phoneme] = field(default_factory=list)  # spoken phonemes, pauses dropped
    word_start: float = 0.0  # seconds: first phoneme's start
    word_end: float = 0.0  # seconds: the trailing pause's start (espeak's silence excluded)

    @property
    def word_duration(self) -> float:
        return self.word_end - self.word_start


class _Engine:
    """This process's espeak-ng: loaded and initialised on first use."""

    def __init__(self) -> None:
        import espeakng_loader  # the wheel's own locator of the library and its data

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data = espeakng_loader.get_data_path().encode()
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_PHONEME_EVENTS)
        if self.rate <= 0:
            raise TalkfaceError(f"espeak-ng failed to initialise with its data at {data.decode()}")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._callback = _SynthCallback(self._collect)  # keep a reference: C holds only a pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            name = event.id.string.decode("utf-8", "replace") if event.type == _EVENT_PHONEME else ""
            self._events.append((event.type, event.audio_position, name))
            i += 1
        return 0  # 0 = continue synthesis

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int):
        """(int16 samples, events) of one utterance, spoken from this engine's pristine state."""
        args = (text, voice, rate, pitch, pitch_range, seed)
        if not hasattr(os, "fork"):
            return self._speak(*args)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: speak once, send the result, leave without any cleanup
            try:
                os.close(read_end)
                try:
                    result = ("ok", self._speak(*args))
                except TalkfaceError as error:
                    result = ("error", str(error))
                payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
                view = memoryview(payload)
                while view:
                    view = view[os.write(write_end, view) :]
            finally:
                os._exit(0)
        os.close(write_end)
        chunks = []
        with os.fdopen(read_end, "rb") as pipe:
            while chunk := pipe.read(1 << 16):
                chunks.append(chunk)
        os.waitpid(pid, 0)
        if not chunks:
            raise RuntimeError("the espeak-ng child process died without an answer")
        status, value = pickle.loads(b"".join(chunks))
        if status == "error":
            raise TalkfaceError(value)
        return value

    def _speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int):
        self.lib.espeak_ng_SetRandSeed(seed)  # breath and aspiration noise
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise TalkfaceError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        self.lib.espeak_SetParameter(_PARAM_RANGE, int(pitch_range), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return samples, list(self._events)


_engine: _Engine | None = None
_lock = threading.Lock()  # one utterance at a time per process (the children share a callback)


def _get_engine() -> _Engine:
    """This process's engine; a forked process inherits its parent's, still pristine."""
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def synthesize(
    text: str,
    voice: str = "en-us",
    rate: int = 160,
    pitch: int = 50,
    pitch_range: int = 50,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
) -> Speech:
    """Speak `text` with an espeak voice (`"en-us+f3"`), rate in words/min, pitch 0-100;
    `seed` fixes espeak's noise. The same arguments always give the same samples.

    Returns 16 kHz audio (resampled from espeak's 22 050 Hz) and the phoneme timings.
    """
    with _lock:
        engine = _get_engine()
        raw, events = engine.synthesize(text, voice, rate, pitch, pitch_range, seed)
        native_rate = engine.rate
    if len(raw) == 0:
        raise TalkfaceError(f"espeak-ng produced no audio for {text!r}")
    import torch  # here, not at the top: a process that only builds clips elsewhere skips it

    audio = torch.from_numpy(raw.astype(np.float32) / 32768.0)
    with torch.no_grad():
        audio = _resampler(native_rate, sample_rate)(audio).numpy()
    total = len(raw) / native_rate
    phonemes, word_start, word_end = _phoneme_spans(events, total)
    return Speech(np.ascontiguousarray(audio, np.float32), sample_rate, phonemes, word_start, word_end)


@lru_cache(maxsize=4)
def _resampler(source_rate: int, target_rate: int):
    """torchaudio's resampler, kept: building its sinc kernel costs ~100 ms, using it ~1 ms."""
    import torchaudio

    return torchaudio.transforms.Resample(source_rate, target_rate)


def _phoneme_spans(events: list[tuple[int, int, str]], total: float) -> tuple[list[Phoneme], float, float]:
    """Phoneme events give starts only: each phoneme ends where the next event begins."""
    marks = [(ms / 1000.0, name.lstrip("',")) for kind, ms, name in events if kind == _EVENT_PHONEME]
    ends = [t for t, _ in marks[1:]] + [total]
    end_event = [ms / 1000.0 for kind, ms, _ in events if kind == _EVENT_END]
    if end_event:
        ends[-1] = min(total, max(end_event[-1], marks[-1][0] if marks else 0.0))
    spoken = [
        Phoneme(name, start, end)
        for (start, name), end in zip(marks, ends, strict=False)
        if name and name not in PAUSE_PHONEMES and end > start
    ]
    if not spoken:
        return [], 0.0, 0.0
    return spoken, spoken[0].start, spoken[-1].end


def voice_names() -> list[str]:
    """Every accent+variant combination this module picks voices from."""
    return [f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS]
