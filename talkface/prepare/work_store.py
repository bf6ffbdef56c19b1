"""Per-source results on disk, written atomically: the unit of resume.

A source is finished when `work/<id>.npz` (processed) or `work/<id>.skip.json` (skipped, with
the reason) exists. Both are written to a temporary name and renamed, so a killed run never
leaves something that looks finished but is not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from talkface.prepare.clip_pipeline import ProcessedVideo


class WorkStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, source_id: str, suffix: str) -> Path:
        return self.root / f"{source_id}{suffix}"

    def is_done(self, source_id: str) -> bool:
        return self._path(source_id, ".npz").exists() or self._path(source_id, ".skip.json").exists()

    def skip_reason(self, source_id: str) -> str | None:
        path = self._path(source_id, ".skip.json")
        return json.loads(path.read_text())["reason"] if path.exists() else None

    def save(self, source_id: str, video: ProcessedVideo) -> None:
        path = self._path(source_id, ".npz")
        with _atomic(path) as handle:
            np.savez(handle, **video.to_arrays())

    def load(self, source_id: str) -> ProcessedVideo:
        with np.load(self._path(source_id, ".npz")) as arrays:
            return ProcessedVideo.from_arrays({k: arrays[k] for k in arrays.files})

    def save_skip(self, source_id: str, reason: str) -> None:
        with _atomic(self._path(source_id, ".skip.json")) as handle:
            handle.write(json.dumps({"id": source_id, "reason": reason}).encode())

    def forget_skips(self, ids: set[str] | None = None) -> int:
        """Remove skip markers so that those sources are tried again; with `ids`, only theirs
        (a node never touches another node's clips)."""
        markers = [m for m in self.root.rglob("*.skip.json") if ids is None or self._id(m) in ids]
        for marker in markers:
            marker.unlink()
        return len(markers)

    def remove_partials(self, ids: set[str] | None = None) -> None:
        """Temporary files of a killed run; with `ids`, only theirs (another node may be writing
        its own right now)."""
        for partial in self.root.rglob(".partial-*"):
            if ids is None or self._id(partial) in ids:
                partial.unlink(missing_ok=True)

    def _id(self, path: Path) -> str:
        """The source id of a work file (`<id>.npz`, `<id>.skip.json`, `.partial-<pid>-<name>`)."""
        name = path.name.split("-", 2)[2] if path.name.startswith(".partial-") else path.name
        name = name.removesuffix(".npz").removesuffix(".skip.json")
        return (path.parent.relative_to(self.root) / name).as_posix()


class _atomic:
    """`with _atomic(path) as f:` writes to a temporary sibling and renames it on success."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f".partial-{os.getpid()}-{path.name}")

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.partial, "wb")
        return self.handle

    def __exit__(self, exc_type, exc, tb) -> None:
        self.handle.close()
        if exc_type is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def write_json_atomic(path: Path, data) -> None:
    with _atomic(path) as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True).encode())
