"""What `talkface prepare` is asked to do, and what it may touch: checked before any heavy work.

This module imports no torch, litdata or model, so that `talkface prepare` reports a wrong
number or path in well under a second, before a clip is read or a landmark model loads.

What prepare may touch (it never removes or replaces a file it did not make):
- `--out` may not be `--src` nor hold it; an `--out` inside `--src` is allowed and left out of the
  clip search, so a re-run sees the same clips as the first run.
- `--out` must be new, empty, or made by talkface prepare: the marker `<out>/.talkface-prepared`
  (or `<out>/work/settings.json`, written by versions from before the marker).
- A split folder `<out>/<split>` is replaced only when prepare published it (its own marker, or
  the marker-less `light/` + `full/` layout of earlier versions); any other is refused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from talkface.errors import TalkfaceError
from talkface.faces.landmarks import BACKENDS
from talkface.outputs import check_claimable, check_no_overlap, check_output_folder
from talkface.prepare.av_offsets import AvOffsetTable
from talkface.prepare.nodes import check_nodes
from talkface.prepare.sources import LRW_SPLITS, IdentityTable

if TYPE_CHECKING:
    from talkface.audio import FeatureConfig

MARKER = ".talkface-prepared"  # in <out> and in every published <out>/<split>
LEGACY_OWNED = ("work/settings.json",)  # proves an <out> made by prepare before the marker existed
SPLIT_PARTS = ("light", "full")
LAYOUTS = ("auto", "lrw", "grid", "folder")
MAX_WORKERS_PER_CORE = 4  # more processes only thrash (each prepare worker loads a landmark model)


def _default_features() -> FeatureConfig:
    from talkface.audio import FeatureConfig  # torch: imported only when needed

    return FeatureConfig()


@dataclass
class PrepareSettings:
    src: Path
    out: Path
    layout: str = "auto"  # lrw | grid | folder | auto
    crop_size: int = 128
    backend: str = "dlib"
    workers: int = 2
    splits: tuple[str, ...] = LRW_SPLITS
    window: int = 29  # frames per sample for grid/folder (0: whole clip); LRW clips stay whole
    stride: int | None = None  # defaults to the window (no overlap)
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)  # grid/folder: by clip name
    identities: Path | None = None  # CSV file,identity,split: every clip to its identity's split
    av_offsets: Path | None = None  # CSV file,offset_frames: recordings whose sound comes late (or early)
    video_only: bool = False  # picture only (stage-2 data): sound ignored, meta.json says "audio": false
    features: FeatureConfig = field(default_factory=_default_features)
    retry_skipped: bool = False
    progress: bool = True
    num_nodes: int = 1  # machines preparing together into one shared --out (see talkface/prepare/nodes.py)
    node_rank: int = 0  # this machine: 0 .. num_nodes - 1; node 0 merges the parts
    node_timeout: float = 86400.0  # seconds node 0 waits for the other nodes' parts

    def check(self) -> None:
        """Every setting in range (FeatureConfig checks its own values when it is made)."""
        if self.crop_size not in (128, 256):
            raise TalkfaceError(f"--crop must be 128 or 256, got {self.crop_size}")
        if self.backend not in BACKENDS:
            raise TalkfaceError(f"unknown landmark backend {self.backend!r}; use one of: {', '.join(BACKENDS)}")
        if self.layout not in LAYOUTS:
            raise TalkfaceError(f"unknown layout {self.layout!r}; use lrw, grid, folder or auto")
        check_workers(self.workers)
        if self.window < 0:
            raise TalkfaceError(f"--window must be >= 0 (0: whole clips), got {self.window}")
        if self.stride is not None and self.stride < 1:
            raise TalkfaceError(f"--stride must be at least 1, got {self.stride}")
        if not self.splits:
            raise TalkfaceError("--splits is empty: give comma-separated splits, e.g. train,val,test")
        unknown = set(self.splits) - set(LRW_SPLITS)
        if unknown:
            raise TalkfaceError(f"unknown split(s) {', '.join(sorted(unknown))}; use train, val, test")
        ratios = tuple(self.split_ratios)
        if len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
            raise TalkfaceError(f"--split-ratios must be three numbers >= 0 that sum to 1, got {ratios}")
        check_nodes(self.num_nodes, self.node_rank)
        if not self.node_timeout > 0:
            raise TalkfaceError(f"--node-timeout must be a positive number of seconds, got {self.node_timeout}")
        if self.video_only and self.av_offsets is not None:
            raise TalkfaceError("--av-offsets moves sound, and --video-only prepares none: give one of them")
        self.identity_table()  # a missing or garbled table is one line now, before any clip is read
        self.offset_table()

    def identity_table(self) -> IdentityTable | None:
        """The `--identities` table, read and checked; None when splits come from the layout."""
        return None if self.identities is None else IdentityTable.read(Path(self.identities))

    def offset_table(self) -> AvOffsetTable | None:
        """The `--av-offsets` table, read and checked; None when every clip keeps its sound as it is."""
        return None if self.av_offsets is None else AvOffsetTable.read(Path(self.av_offsets))


def check_workers(workers: int, option: str = "--workers") -> None:
    """Worker processes (prepare's and sample's): at least one, at most a few per core."""
    cores = os.cpu_count() or 1
    if workers < 1:
        raise TalkfaceError(f"{option} must be at least 1, got {workers}")
    if workers > MAX_WORKERS_PER_CORE * cores:
        raise TalkfaceError(
            f"{option} {workers} is more than {MAX_WORKERS_PER_CORE} processes per CPU core ({cores} here), "
            f"which only slows everything down: use at most {MAX_WORKERS_PER_CORE * cores}"
        )


def check_feature_options(n_mels: int, context: int) -> None:
    """The bounds that need no torch; FeatureConfig checks the upper bound of --n-mels (the most
    mel bands with no empty filter, which torchaudio computes) when it is made."""
    if n_mels < 1:
        raise TalkfaceError(f"--n-mels must be at least 1 (80 is usual), got {n_mels}")
    if context < 1 or context % 2 == 0:
        raise TalkfaceError(f"--context must be a positive odd number of video frames (7 is usual), got {context}")


def check_paths(src: Path, out: Path) -> None:
    """`--src` a folder; `--out` creatable, not `--src` nor holding it, and new, empty or ours."""
    src, out = Path(src), Path(out)
    if src.exists() and not src.is_dir():
        raise TalkfaceError(f"--src {src} is a file; give the folder that holds the videos")
    if not src.is_dir():
        raise TalkfaceError(f"{src}: source folder not found")
    check_no_overlap(out, src)
    check_output_folder(out)
    check_claimable(out, MARKER, "prepare", also_ours=LEGACY_OWNED)


def split_is_ours(folder: Path) -> bool:
    """True when `folder` was published by talkface prepare (marker, or the marker-less layout of
    earlier versions: only `light/` and `full/`, each holding an index.json and chunk files), or
    is an empty folder (nothing to lose)."""
    if (folder / MARKER).is_file():
        return True
    if not folder.is_dir():
        return False
    entries = list(folder.iterdir())
    if not entries:
        return True
    if any(e.name not in SPLIT_PARTS or not e.is_dir() for e in entries):
        return False
    return all(
        (part / "index.json").is_file()
        and all(f.is_file() and (f.name == "index.json" or f.suffix == ".bin") for f in part.iterdir())
        for part in entries
    )


def check_split_folder(out: Path, split: str) -> None:
    """Refuse to go on when `<out>/<split>` exists and talkface prepare did not make it."""
    folder = Path(out) / split
    if folder.exists() and not split_is_ours(folder):
        raise TalkfaceError(f"{folder} exists and was not made by talkface prepare; choose another --out")
