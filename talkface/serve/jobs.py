"""One generation at a time, a bounded number waiting: past it, the caller is told to come back
(HTTP 503) instead of the server piling up work, memory and disk.

Each job owns a temporary folder (its uploads and its video) under the server's own folder; the
folder is removed once its video has been sent, when the job fails, or when nobody fetched the
video within `keep_seconds`.
"""

from __future__ import annotations

import functools
import logging
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from talkface.errors import TalkfaceError

log = logging.getLogger("talkface.serve")
SWEEP_SECONDS = 60


class QueueFull(Exception):
    """Every place in the queue is taken."""


class ShuttingDown(TalkfaceError):
    """The server stopped before the job ran or finished."""


class Cancelled(TalkfaceError):
    """The client went away before its video was ready."""


@dataclass
class Job:
    id: str
    folder: Path
    options: dict  # what the work function needs besides the folder (inputs, generation options)
    number: int = 0  # order of submission
    names: dict[str, str] = field(default_factory=dict)  # stored path -> the client's file name, for messages
    state: str = "queued"  # queued, running, done, failed
    done: int = 0  # frames encoded
    total: int = 0
    error: str | None = None  # one line for the user
    status: int = 200  # the HTTP status of a failure
    output: Path | None = None
    finished_at: float | None = None
    cancelled: bool = False  # its client went away: skipped if waiting, stopped at the next frame if running
    future: Future = field(default_factory=Future)  # resolved (with the job) when it ends either way

    def message(self, error: Exception) -> str:
        """The error's one line, with the client's file names in place of the job folder's paths."""
        text = str(error)
        for path, shown in self.names.items():
            text = text.replace(path, shown)
        return text


class JobQueue:
    """A worker thread that runs `work(job, on_progress)` for one job at a time."""

    def __init__(
        self, work: Callable[[Job, Callable[[int, int], None]], Path], waiting: int, keep_seconds: float = 600
    ):
        self.work = work
        self.capacity = waiting + 1  # the running job and those waiting
        self.keep_seconds = keep_seconds
        self.root = Path(tempfile.mkdtemp(prefix="talkface-serve-"))
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.pending: queue.Queue[Job | None] = queue.Queue()
        self.admitted = 0  # reserved places: jobs being uploaded, waiting or running
        self.submitted = 0
        self.closing = threading.Event()
        self.worker = threading.Thread(target=self._run, name="talkface-generation", daemon=True)
        self.worker.start()

    def reserve(self) -> None:
        """Takes a place before the upload is read, so a full server reads no more uploads."""
        with self.lock:
            if self.closing.is_set() or self.admitted >= self.capacity:
                raise QueueFull()
            self.admitted += 1

    def release(self) -> None:
        """Gives back a reserved place whose upload was refused."""
        with self.lock:
            self.admitted -= 1

    def new_job(self) -> Job:
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir()
        return Job(job_id, folder, {})

    def submit(self, job: Job) -> Job:
        """Queues a job whose place was reserved."""
        self.sweep()
        with self.lock:
            self.submitted += 1
            job.number = self.submitted
            self.jobs[job.id] = job
        self.pending.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def position(self, job: Job) -> int:
        """How many jobs run or wait before this one."""
        with self.lock:
            active = [other for other in self.jobs.values() if other.state in ("queued", "running")]
            return sum(1 for other in active if other.number < job.number)

    def remove(self, job: Job) -> None:
        """Forgets a finished job and deletes its folder (after its video was sent)."""
        with self.lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def sweep(self) -> None:
        """Removes finished jobs nobody came back for."""
        now = time.monotonic()
        with self.lock:
            stale = [j for j in self.jobs.values() if j.finished_at and now - j.finished_at > self.keep_seconds]
        for job in stale:
            self.remove(job)

    def busy(self) -> int:
        with self.lock:
            return self.admitted

    def stop(self) -> None:
        """Waiting jobs fail at once (503), the running one at its next frame: on SIGTERM or Ctrl-C,
        so that requests waiting for a video are answered and the server can exit."""
        if not self.closing.is_set():
            self.closing.set()
            self.pending.put(None)

    def close(self) -> None:
        """Stops and removes every job folder."""
        self.stop()
        self.worker.join(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self) -> None:
        while True:
            try:
                job = self.pending.get(timeout=SWEEP_SECONDS)
            except queue.Empty:  # idle: forget the videos nobody came back for
                self.sweep()
                continue
            if job is None:
                break
            if self.closing.is_set():
                self._finish(job, ShuttingDown("the server is shutting down; try again later"), 503)
                continue
            if job.cancelled:
                self._finish(job, Cancelled("cancelled: the client went away"), 499)
                continue
            job.state = "running"
            try:
                job.output = self.work(job, functools.partial(self._progress, job))
            except ShuttingDown as error:
                self._finish(job, error, 503)
            except Cancelled as error:
                self._finish(job, error, 499)
            except TalkfaceError as error:  # the user's photo or speech: the same line the CLI prints
                self._finish(job, error, 422)
            except Exception as error:  # a bug: logged with its traceback, one line to the user
                log.exception("job %s failed", job.id)
                self._finish(job, RuntimeError(f"generation failed on the server ({type(error).__name__})"), 500)
            else:
                self._finish(job, None, 200)
        while not self.pending.empty():  # jobs queued behind the stop
            job = self.pending.get()
            if job is not None:
                self._finish(job, ShuttingDown("the server is shutting down; try again later"), 503)

    def _progress(self, job: Job, done: int, total: int) -> None:
        if self.closing.is_set():
            raise ShuttingDown("the server is shutting down; try again later")
        if job.cancelled:
            raise Cancelled("cancelled: the client went away")
        job.done, job.total = done, total

    def _finish(self, job: Job, error: Exception | None, status: int) -> None:
        if error is not None:
            job.error, job.status, job.state = job.message(error), status, "failed"
            shutil.rmtree(job.folder, ignore_errors=True)  # nothing in it will be served
        else:
            job.state = "done"
        job.finished_at = time.monotonic()
        with self.lock:
            self.admitted -= 1
        job.future.set_result(job)
