"""Open a media file with PyAV, turning every way it can fail into one clear MediaError."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import av

from talkface.errors import MediaError


def check_file(path: str | Path) -> Path:
    """Fail early, with the reason, for a path that cannot be a media file."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, expected a media file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes)")
    return path


@contextlib.contextmanager
def open_media(path: str | Path) -> Iterator[av.container.InputContainer]:
    """Open `path` for reading; any PyAV/FFmpeg failure inside the block becomes a MediaError."""
    path = check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as error:
        raise MediaError(
            f"{path}: cannot be opened as audio/video; it is corrupt, truncated or not a media file ({_reason(error)})"
        ) from None
    try:
        yield container
    except av.FFmpegError as error:
        raise MediaError(f"{path}: truncated or corrupt media ({_reason(error)})") from None
    finally:
        container.close()


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.strip().rstrip(".") or type(error).__name__
