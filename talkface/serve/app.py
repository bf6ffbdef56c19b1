"""The routes: the page, the HTTP API and a health check.

- `POST /v1/generate` (multipart: `image`, `audio`, options) waits for the video and returns it.
- `POST /v1/jobs` takes the same form and answers at once with a job id; the page polls
  `GET /v1/jobs/{id}` for the progress bar and fetches `GET /v1/jobs/{id}/video` once.
- Every refusal is JSON `{"error": "one line"}` with a 4xx (the user's mistake) or 503 (full).

Only a job's own video is ever served, looked up by its random id; no route takes a path.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import threading
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from talkface.checks import check_feather, check_max_side
from talkface.errors import TalkfaceError
from talkface.serve.jobs import Job, JobQueue, QueueFull
from talkface.serve.limits import (
    Limits,
    NotMedia,
    UploadTooLarge,
    check_audio,
    check_image,
    shown_name,
    stored_name,
    too_large_message,
)
from talkface.serve.models import Models

RETRY_AFTER_SECONDS = 30
DISCONNECT_CHECK_SECONDS = 1.0
FORM_OPTIONS = ("paste_back", "feather", "max_side", "mouth_from_photo", "teeth")
EXAMPLE_SENTENCE = "Hello! This face was made from one photo and this recording, through predicted landmarks."


class Refused(Exception):
    """A request answered with one line and an HTTP status."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def create_app(models: Models, limits: Limits) -> FastAPI:
    jobs = JobQueue(_work(models), limits.queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await anyio.to_thread.run_sync(jobs.close)

    # No /docs: FastAPI's docs pages load their scripts from a CDN, which an offline server cannot reach.
    app = FastAPI(
        title="talkface",
        summary="Photo + speech → talking-face video",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.jobs = jobs
    page = resources.files("talkface.serve").joinpath("page.html").read_text(encoding="utf-8")
    checking = threading.Lock()  # uploads are decoded one at a time: memory stays that of one
    examples = _Examples()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    def healthz() -> dict:
        """The server is up and its models are loaded."""
        return {
            "status": "ok",
            "models": list(models.names),
            "device": models.device,
            "precision": models.precision,
            "busy": jobs.busy(),
            "capacity": jobs.capacity,
            "limits": {
                "max_upload_mb": limits.max_upload_mb,
                "max_audio_seconds": limits.max_audio_seconds,
                "queue": limits.queue,
            },
        }

    @app.post("/v1/generate", response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}})
    async def generate_video(request: Request) -> Response:
        """Form fields `image` (a face photo), `audio` (speech), optional `paste_back` (true),
        `feather` (0.1), `max_side` (1024), `mouth_from_photo` (false), `teeth` (false). Answers the H.264 + AAC mp4, 25 fps."""
        job, refusal = await _accept(request, jobs, limits, checking)
        if refusal is not None:
            return refusal
        await _wait(job, request)
        if job.cancelled:  # nobody is there to answer
            jobs.remove(job)
            return Response(status_code=499)
        if job.error is not None:
            jobs.remove(job)
            return _error(job.status, job.error)
        return _video(job, jobs)

    @app.post("/v1/jobs", status_code=202)
    async def start_job(request: Request) -> Response:
        """The same form as /v1/generate; answers at once with the job's id (the page's way)."""
        job, refusal = await _accept(request, jobs, limits, checking)
        if refusal is not None:
            return refusal
        return JSONResponse({"id": job.id, "position": jobs.position(job)}, status_code=202)

    @app.get("/v1/jobs/{job_id}")
    def job_status(job_id: str) -> Response:
        """State (queued, running, done, failed), frames done of total, jobs ahead, error line."""
        job = jobs.get(job_id)
        if job is None:
            return _error(404, "no such job (finished jobs are kept until their video is fetched)")
        return JSONResponse(
            {
                "state": job.state,
                "done": job.done,
                "total": job.total,
                "position": jobs.position(job),
                "error": job.error,
            }
        )

    @app.get("/v1/jobs/{job_id}/video")
    def job_video(job_id: str) -> Response:
        """The finished video, once: its folder is removed after it is sent."""
        job = jobs.get(job_id)
        if job is None or job.state != "done" or job.output is None:
            return _error(404, "no finished video for this job")
        return _video(job, jobs)

    @app.get("/v1/examples/{name}", include_in_schema=False)
    def example(name: str) -> Response:
        """The bundled example photo (face.png) and speech (speech.wav), made in memory."""
        if name not in _Examples.TYPES:
            return _error(404, f"no such example; there are {', '.join(_Examples.TYPES)}")
        return Response(examples.get(name), media_type=_Examples.TYPES[name])

    return app


async def _accept(request: Request, jobs: JobQueue, limits: Limits, checking: threading.Lock):
    """(the queued job, None) or (None, the refusal). A place is taken before the upload is read."""
    body = _CappedBody(request.receive, limits.max_upload_bytes, too_large_message(limits))
    expects_continue = "100-continue" in request.headers.get("expect", "").lower()
    try:
        if _declared_length(request) > limits.max_upload_bytes:
            raise Refused(413, too_large_message(limits))
        try:
            jobs.reserve()
        except QueueFull:
            raise Refused(
                503,
                f"the server is busy ({jobs.capacity} jobs running or waiting); try again in {RETRY_AFTER_SECONDS} s",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        job = jobs.new_job()
        try:
            await _read_upload(Request(request.scope, body), job, limits, checking)
        except BaseException:
            jobs.release()
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        return jobs.submit(job), None
    except UploadTooLarge as error:
        refusal = Refused(413, str(error))
    except NotMedia as error:
        refusal = Refused(415, str(error))
    except HTTPException as error:  # a malformed multipart body
        refusal = Refused(400, f"not a readable multipart form ({error.detail})")
    except TalkfaceError as error:  # an option out of range
        refusal = Refused(400, str(error))
    except Refused as error:
        refusal = error
    if not expects_continue:  # a client still sending reads the answer, not a reset connection
        await body.drain(2 * limits.max_upload_bytes)
    return None, _error(refusal.status, refusal.message, refusal.headers)


async def _read_upload(request: Request, job: Job, limits: Limits, checking: threading.Lock) -> None:
    """Stores the two files in the job's folder, checks them by content and reads the options."""
    async with request.form(max_files=2, max_fields=len(FORM_OPTIONS) + 2) as form:
        stored = {}
        for role, kind in (("image", "a face photo"), ("audio", "a speech recording")):
            upload = form.get(role)
            if not isinstance(upload, UploadFile):
                raise Refused(400, f"send {kind} as the file field `{role}` of a multipart form")
            path = job.folder / stored_name(role, upload.filename)
            await anyio.to_thread.run_sync(_copy, upload, path)
            job.names[str(path)] = shown_name(upload.filename, role)
            stored[role] = path
        job.options = {"image": stored["image"], "audio": stored["audio"], **_options(form)}
    image, audio = stored["image"], stored["audio"]

    def check() -> None:
        with checking:
            check_image(image, job.names[str(image)])
            check_audio(audio, job.names[str(audio)], limits)

    await anyio.to_thread.run_sync(check)


async def _wait(job: Job, request: Request) -> None:
    """Waits for the job; a client that hangs up cancels it, so abandoned requests never hold the queue."""
    finished = asyncio.wrap_future(job.future)
    while not finished.done():
        await asyncio.wait({finished}, timeout=DISCONNECT_CHECK_SECONDS)
        if not finished.done() and await request.is_disconnected():
            job.cancelled = True
            await finished


def _options(form) -> dict:
    """paste_back, feather, max_side, mouth_from_photo, teeth from the form; an unknown field or a bad value is refused."""
    unknown = sorted(set(form.keys()) - set(FORM_OPTIONS) - {"image", "audio"})
    if unknown:
        raise Refused(400, f"unknown form field {unknown[0]!r}; the options are {', '.join(FORM_OPTIONS)}")
    try:
        feather = float(form.get("feather", 0.1))
        max_side = int(form.get("max_side", 1024))
    except ValueError as error:
        raise Refused(400, f"feather is a number and max_side a whole number of pixels ({error})") from None
    check_feather(feather, "feather")
    check_max_side(max_side, "max_side")
    return {
        "paste_back": _flag(form, "paste_back", "true"),
        "feather": feather,
        "max_side": max_side,
        "mouth_from_photo": _flag(form, "mouth_from_photo", "false"),
        "teeth": _flag(form, "teeth", "false"),
    }


def _flag(form, name: str, default: str) -> bool:
    value = str(form.get(name, default)).strip().lower()
    if value not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
        raise Refused(400, f"{name} {value!r}: give true or false")
    return value in ("true", "1", "on", "yes")


def _work(models: Models):
    def work(job: Job, on_progress) -> Path:
        from talkface.generation import generate
        from talkface.networks.mouth_inside import TEETH_DEPTH

        out = job.folder / "talking.mp4"
        options = job.options
        generate(
            options["image"],
            options["audio"],
            models.landmark,
            models.generator,
            out,
            paste_back=options["paste_back"],
            feather=options["feather"],
            max_side=options["max_side"],
            mouth_from_photo=options["mouth_from_photo"] or None,  # unset: as the model says
            mouth_teeth=TEETH_DEPTH if options["teeth"] else None,
            backend=models.backend,
            device=models.device,
            on_progress=on_progress,
        )
        return out

    return work


def _video(job: Job, jobs: JobQueue) -> FileResponse:
    return FileResponse(
        job.output, media_type="video/mp4", filename="talkface.mp4", background=BackgroundTask(jobs.remove, job)
    )


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _copy(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1024 * 1024)


def _declared_length(request: Request) -> int:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


class _CappedBody:
    """An ASGI `receive` that counts the body and stops it past the limit, while it is read."""

    def __init__(self, receive, limit: int, message: str) -> None:
        self.receive, self.limit, self.message = receive, limit, message
        self.read, self.ended = 0, False

    async def __call__(self):
        message = await self.receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            self.ended = not message.get("more_body", False)
            if self.read > self.limit:
                raise UploadTooLarge(self.message)
        elif message["type"] == "http.disconnect":
            self.ended = True
        return message

    async def drain(self, budget: int) -> None:
        """Reads and drops the rest of a refused body, up to `budget` bytes."""
        while not self.ended and self.read <= budget:
            message = await self.receive()
            if message["type"] != "http.request":
                break
            self.read += len(message.get("body", b""))
            self.ended = not message.get("more_body", False)


class _Examples:
    """The bundled example: scikit-image's astronaut photo and a sentence spoken by espeak-ng,
    made once on first use and kept in memory."""

    TYPES = {"face.png": "image/png", "speech.wav": "audio/wav"}

    def __init__(self) -> None:
        self.made: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def get(self, name: str) -> bytes:
        with self.lock:
            if not self.made:
                self.made = _make_examples()
            return self.made[name]


def _make_examples() -> dict[str, bytes]:
    import wave

    import cv2
    import numpy as np
    from skimage import data

    from talkface.sample.speech import synthesize

    ok, png = cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    speech = synthesize(EXAMPLE_SENTENCE, voice="en-us+m3", rate=150)
    wav = io.BytesIO()
    with wave.open(wav, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(speech.sample_rate)
        handle.writeframes((np.clip(speech.audio, -1, 1) * 32767).astype("<i2").tobytes())
    return {"face.png": png.tobytes(), "speech.wav": wav.getvalue()}
