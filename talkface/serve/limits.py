"""What an upload may be. Uploads are untrusted: their size is capped while they are read, and
their kind is decided by decoding them (the project's image reader, a PyAV pass over the audio),
never by their name or their declared content type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from talkface.errors import MediaError, TalkfaceError
from talkface.media.audio_stream import probe_audio
from talkface.media.image_io import read_image

MEGABYTE = 1024 * 1024
SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")


class UploadTooLarge(TalkfaceError):
    """The request body is over the upload limit (HTTP 413)."""


class NotMedia(TalkfaceError):
    """An upload is not an image or not audio (HTTP 415)."""


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = 20.0  # the whole request body: photo + speech + options
    max_audio_seconds: float = 60.0
    queue: int = 4  # jobs that may wait while one runs; more are answered 503

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MEGABYTE)

    def check(self) -> None:
        if self.max_upload_mb <= 0:
            raise TalkfaceError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if self.max_audio_seconds <= 0:
            raise TalkfaceError(f"--max-audio-seconds must be positive, got {self.max_audio_seconds}")
        if self.queue < 0:
            raise TalkfaceError(f"--queue must be 0 or more, got {self.queue}")


def too_large_message(limits: Limits) -> str:
    return f"the upload is larger than the server's limit of {limits.max_upload_mb:g} MB; send a smaller photo or shorter speech"


def stored_name(role: str, filename: str | None) -> str:
    """The name an upload is stored under in its job folder: the role and, if harmless, the
    suffix the client gave (decoders may use it as a hint; the client's name is never a path)."""
    suffix = Path(filename or "").suffix.lower()
    return role + (suffix if SAFE_SUFFIX.match(suffix) else "")


def shown_name(filename: str | None, role: str) -> str:
    """The client's file name as messages show it: its last part, printable characters only."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or role


def check_image(path: Path, shown: str) -> None:
    """Decodes the photo once; a file that is not an image is refused with the reader's own line."""
    try:
        read_image(path)
    except MediaError as error:
        raise NotMedia(str(error).replace(str(path), shown)) from None


def check_audio(path: Path, shown: str, limits: Limits) -> None:
    """One streaming pass: not audio, or longer than the limit, is refused before the job queues."""
    try:
        summary = probe_audio(path)
    except MediaError as error:
        raise NotMedia(str(error).replace(str(path), shown)) from None
    if summary.seconds > limits.max_audio_seconds:
        raise UploadTooLarge(
            f"{shown}: the speech is {summary.seconds:.1f} s long; this server takes at most "
            f"{limits.max_audio_seconds:g} s"
        )
