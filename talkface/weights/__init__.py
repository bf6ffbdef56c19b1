"""The released models, shipped inside the package: what `talkface generate` uses by default.

Both are slim safetensors files written by `talkface export` from the `landmark/real` and
`generator/real` recipes; stage 1 is the mean of three runs of its recipe (seeds 0-2). MODEL_CARD.md
says how they were trained and how well they do.
"""

from __future__ import annotations

from pathlib import Path

from talkface.errors import TalkfaceError

WEIGHTS_DIR = Path(__file__).resolve().parent
LANDMARK = WEIGHTS_DIR / "landmark_real.safetensors"
GENERATOR = WEIGHTS_DIR / "generator_real.safetensors"


def released_checkpoints() -> tuple[Path, Path]:
    """(stage 1, stage 2) paths of the released models; one clear error when they are not installed."""
    missing = [path.name for path in (LANDMARK, GENERATOR) if not path.is_file()]
    if missing:
        raise TalkfaceError(
            f"the released models are not installed ({', '.join(missing)} missing in {WEIGHTS_DIR}); "
            "give --landmark-ckpt and --generator-ckpt"
        )
    return LANDMARK, GENERATOR


SYNC_EXPERT = WEIGHTS_DIR / "sync_expert.safetensors"


def released_sync_expert() -> Path:
    """The released lip-sync expert (`sync/real`, what `talkface sync` uses by default); one clear
    error when it is not installed."""
    if not SYNC_EXPERT.is_file():
        raise TalkfaceError(
            f"the released sync expert is not installed ({SYNC_EXPERT.name} missing in {WEIGHTS_DIR}); give --expert"
        )
    return SYNC_EXPERT
