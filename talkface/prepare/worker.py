"""What each preparation worker process runs: one source in, a small outcome out.

Results go straight to the work store from the worker, so only a few numbers cross the pipe.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch

from talkface.errors import TalkfaceError
from talkface.faces import get_extractor
from talkface.prepare.clip_pipeline import PipelineSettings, process_source
from talkface.prepare.sources import Source
from talkface.prepare.work_store import WorkStore

_state: dict = {}


@dataclass
class Outcome:
    id: str
    frames: int = 0
    reason: str | None = None  # None when prepared


def init_worker(backend: str, settings: PipelineSettings, work_root: Path) -> None:
    """Once per process: one thread each (the pool is the parallelism), one landmark model."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _state["extractor"] = get_extractor(backend)
    _state["settings"] = settings
    _state["store"] = WorkStore(work_root)


def prepare_one(source: Source) -> Outcome:
    store: WorkStore = _state["store"]
    try:
        video = process_source(source, _state["extractor"], _state["settings"])
    except TalkfaceError as error:  # a bad clip: no face, corrupt, too short, no audio, ...
        reason = str(error)
    except Exception as error:  # a bug or an unforeseen input: report it, keep going
        reason = f"unexpected {type(error).__name__}: {error} | {traceback.format_exc(limit=3)!r}"
    else:
        store.save(source.id, video)
        return Outcome(source.id, frames=video.num_frames)
    store.save_skip(source.id, reason)
    return Outcome(source.id, reason=reason)
