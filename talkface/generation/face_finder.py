"""The photo's landmarks, found in a helper process while generation loads its models.

Loading dlib's 68-point model takes ~0.75 s of a 10-second clip's ~6 s, and it holds the GIL, so a
thread overlaps nothing with it. A forked process does: meanwhile generation loads its
checkpoints and the phone recogniser and turns the first seconds of audio into stage-1 inputs.
The helper reads nothing from disk but the model and returns 68 points (or the user's error).

The face is found in this process instead, as before, where the model is already here
(`talkface serve` loads it at start-up), for other backends (FAN runs torch, which must not
fork), and where fork is not the platform's safe default (only Linux forks here).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time

import numpy as np

from talkface import errors
from talkface.faces.landmarks import extractor_loaded, get_extractor
from talkface.generation.face_input import Photo, find_landmarks


class FaceFinder:
    """`FaceFinder(photo, backend)` starts; `ready()` polls; `result()` waits for (points, notes)."""

    def __init__(self, photo: Photo, backend: str = "dlib") -> None:
        self.photo = photo
        self.backend = backend
        self.started = time.perf_counter()
        self.model_seconds = 0.0  # loading the landmark model (in the helper, or here)
        self.find_seconds = 0.0  # detecting and fitting the face once the model is loaded
        self._process = None
        if in_background(backend):
            context = multiprocessing.get_context("fork")
            self._receive, send = context.Pipe(duplex=False)
            self._process = context.Process(target=_find, args=(photo, backend, send), daemon=True)
            self._process.start()
            send.close()  # the helper holds the only sending end: its death reads as EOF here

    @property
    def in_background(self) -> bool:
        return self._process is not None

    def load_model(self) -> None:
        """In this process: load the landmark model now (timed with the checkpoints); no-op in
        the background."""
        if not self.in_background:
            started = time.perf_counter()
            get_extractor(self.backend)
            self.model_seconds = time.perf_counter() - started

    def ready(self) -> bool:
        """Whether `result()` would return at once."""
        return not self.in_background or self._receive.poll()

    def result(self) -> tuple[np.ndarray, list[str]]:
        """The landmarks and notes; the helper's TalkfaceError is raised here with its message.

        A helper that died without an answer (killed, out of memory) or hit a bug is not trusted:
        the face is then found in this process, where a bug shows its traceback.
        """
        message = None
        if self.in_background:
            try:
                message = self._receive.recv()
            except EOFError:
                message = None
            finally:
                self.close()
        if message is not None and message[0] == "ok":
            _, points, notes, self.model_seconds, self.find_seconds = message
            return points, notes
        if message is not None and message[0] == "error":
            raise _user_error(message[1], message[2])
        self.load_model()
        started = time.perf_counter()
        found = find_landmarks(self.photo.image, self.photo.name, self.backend)
        self.find_seconds = time.perf_counter() - started
        return found

    def close(self) -> None:
        """Stop the helper (a caller that gives up early); safe to call twice."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
            self._receive.close()
            self._process = None


def in_background(backend: str) -> bool:
    return sys.platform == "linux" and backend == "dlib" and not extractor_loaded(backend)


def _find(photo: Photo, backend: str, send) -> None:
    """The helper: load the model, find the face, send ('ok', points, notes, model s, find s) or
    ('error', class name, message) for a user's error, ('bug', text) for anything else.

    Its caller answers Ctrl-C and stops it with SIGTERM (`close`): the helper ignores the first
    and dies of the second at once, without the caller's handlers it inherited by forking."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        send.send(_answer(photo, backend))
    except OSError:  # the caller is gone (killed): nobody to answer
        pass
    finally:
        send.close()


def _answer(photo: Photo, backend: str) -> tuple:
    try:
        started = time.perf_counter()
        get_extractor(backend)
        loaded = time.perf_counter()
        points, notes = find_landmarks(photo.image, photo.name, backend)
        return ("ok", points, notes, loaded - started, time.perf_counter() - loaded)
    except errors.TalkfaceError as error:
        return ("error", type(error).__name__, str(error))
    except Exception as error:  # noqa: BLE001 - reported as a bug, and retried in the caller
        return ("bug", f"{type(error).__name__}: {error}")


def _user_error(name: str, text: str) -> errors.TalkfaceError:
    """The helper's error as the same class where talkface.errors has it (one line either way)."""
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.TalkfaceError)):
        cls = errors.TalkfaceError
    return cls(text)
