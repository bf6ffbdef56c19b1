"""Reading and writing talking-face media with PyAV: any container in, H.264 + AAC mp4 out.

The readers and writers are imported on first use (PEP 562), so that `talkface.media.formats`
and the light checks that need it import neither PyAV nor torch.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "read_audio": "talkface.media.audio_io",
    "read_image": "talkface.media.image_io",
    "read_video": "talkface.media.video_io",
    "VideoClip": "talkface.media.video_io",
    "Mp4Writer": "talkface.media.mp4_writer",
    "write_mp4": "talkface.media.mp4_writer",
}

__all__ = ["read_audio", "read_image", "read_video", "VideoClip", "Mp4Writer", "write_mp4"]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
