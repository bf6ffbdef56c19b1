"""Output folders: checked in the first second, and claimed with a marker file.

Rules every command that writes a folder follows:

- The folder is checked before any heavy work: not an existing file, not under a file, and
  creatable and writable (probed by making and removing a hidden temporary folder, since
  `os.access` says yes to root even on /proc).
- Outputs never overlap inputs: `--out` equal to an input folder, or holding one, is refused.
- A command only ever removes or replaces what it made itself. A folder it creates (or finds
  empty) gets a marker file naming the command; a non-empty folder without the marker is not
  touched, and the user is asked for another one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from talkface.errors import TalkfaceError

# Entries that do not make a folder "hold files" (left by file managers, or by talkface's own
# datamodule, which takes `.prepare.lock` in the dataset folder before preparing it).
IGNORED_ENTRIES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".prepare.lock"})


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """Refuse, with one line, an output folder that cannot be made or written. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TalkfaceError(f"{option} {path} is an existing file; give a folder (a new or empty one)")
    check_creatable(path, path, option)
    return path


def check_creatable(target: Path, shown: Path, option: str) -> None:
    """`target` (a folder, or the folder a file goes in) can be made and written: its nearest
    existing ancestor is a folder in which something can be created (probed by making and
    removing a hidden folder, since `os.access` says yes to root even on /proc)."""
    existing = Path(target)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise TalkfaceError(f"{option} {shown} cannot be made: {existing} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".talkface-write-test-", dir=existing)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise TalkfaceError(
            f"{option} {shown} cannot be made: {existing} cannot be written ({reason}); choose another place"
        ) from None
    shutil.rmtree(probe, ignore_errors=True)


def check_no_overlap(out: str | Path, src: str | Path, out_option: str = "--out", src_option: str = "--src") -> None:
    """Refuse an output folder that is the input folder or holds it (its files would mix with the
    input's and could replace them). An output folder inside the input one is the caller's choice."""
    out_resolved, src_resolved = Path(out).resolve(), Path(src).resolve()
    if out_resolved == src_resolved:
        raise TalkfaceError(
            f"{out_option} {out} is the {src_option} folder: outputs would mix with your files; "
            f"choose another {out_option} (e.g. {Path(out).name}-prepared beside it)"
        )
    if src_resolved.is_relative_to(out_resolved):
        raise TalkfaceError(
            f"{src_option} {src} is inside {out_option} {out}: outputs would mix with your files; "
            f"choose an {out_option} folder outside {src_option}"
        )


def is_inside(path: Path, folder: Path) -> bool:
    """True when `path` is `folder` or lies below it (after resolving links)."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def holds_files(folder: Path) -> bool:
    """True when `folder` exists and holds anything but the entries in IGNORED_ENTRIES."""
    if not folder.is_dir():
        return False
    return any(entry.name not in IGNORED_ENTRIES for entry in folder.iterdir())


def check_claimable(folder: Path, marker: str, command: str, option: str = "--out", also_ours=()) -> bool:
    """Whether `folder` is already ours (True) or new/empty (False); refuse one holding others' files.

    `also_ours` names files whose presence proves the folder was made by an earlier talkface
    version that wrote no marker yet.
    """
    if (folder / marker).is_file() or any((folder / name).exists() for name in also_ours):
        return True
    if holds_files(folder):
        raise TalkfaceError(
            f"{option} {folder} already holds files that talkface {command} did not make; "
            f"choose a new or empty {option} folder"
        )
    return False


def claim(folder: Path, marker: str, command: str, option: str = "--out") -> None:
    """Create `folder` (and parents) and write the marker that makes it ours."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / marker).is_file():
            write_marker(folder / marker, command)
    except OSError as error:
        raise TalkfaceError(f"{option} {folder} cannot be written ({error.strerror or error})") from None


def write_marker(path: Path, command: str) -> None:
    """A small fixed text (no time stamp: the same build gives the same bytes)."""
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    partial.write_text(f"made by talkface {command}; it may replace or remove what is in this folder\n")
    os.replace(partial, path)
