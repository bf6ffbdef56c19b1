"""Checks of command-line values that need no model: run first, so a mistake costs under a second.

Each raises TalkfaceError with one line naming the option, the value and what would be accepted.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from talkface.errors import TalkfaceError
from talkface.outputs import check_creatable

FEATHER_RANGE = (0.0, 0.5)  # of the crop's side: 0.5 blends from the centre out
MAX_SIDE_RANGE = (64, 16384)  # below 64 px no face is found; above, a photo is only slower
DEVICE_PATTERN = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")
PRECISIONS = ("auto", "fp32", "bf16")  # of stage 2's convolutions in generation (talkface.generation.precision)


def check_output_file(out: Path, inputs: dict[str, str | Path], suffix: str, option: str = "--out") -> None:
    """A file the command may create: right suffix, not a folder, not one of the inputs, in a
    place that can be made and written."""
    out = Path(out)
    if out.suffix.lower() != suffix:
        raise TalkfaceError(f"{option} {out}: the output is written as {suffix}; give a name ending in {suffix}")
    if out.is_dir():
        raise TalkfaceError(f"{option} {out} is a folder; give the file to write, e.g. {out / ('talking' + suffix)}")
    for input_option, path in inputs.items():
        if _same_file(out, Path(path)):
            raise TalkfaceError(
                f"{option} {out} is the {input_option} file; it would be overwritten: choose another name"
            )
    check_creatable(out.parent, out, option)


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_feather(feather: float, option: str = "--feather") -> None:
    low, high = FEATHER_RANGE
    if not (math.isfinite(feather) and low <= feather <= high):
        raise TalkfaceError(f"{option} {feather}: give a fraction of the crop from {low} to {high} (default 0.1)")


def check_max_side(max_side: int, option: str = "--max-side") -> None:
    low, high = MAX_SIDE_RANGE
    if not low <= max_side <= high:
        raise TalkfaceError(f"{option} {max_side}: give a size in pixels from {low} to {high} (default 1024)")


def check_device_name(device: str, option: str = "--device") -> None:
    if not DEVICE_PATTERN.match(device):
        raise TalkfaceError(f"{option} {device!r}: not a device; give cpu, cuda, cuda:N or mps")


def check_device_available(device: str, option: str = "--device") -> None:
    """Against what this machine has (imports torch: call after the instant checks)."""
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if count == 0:
            raise TalkfaceError(f"{option} {device}: this machine has no CUDA GPU that torch can use; use --device cpu")
        if index >= count:
            raise TalkfaceError(f"{option} {device}: this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
    if device == "mps" and not torch.backends.mps.is_available():
        raise TalkfaceError(f"{option} mps: Apple's MPS is not available on this machine; use --device cpu")


def check_number(
    name: str, value, minimum: float | None = None, *, above: float | None = None, whole: bool = False
) -> None:
    """A finite number (whole when `whole`), at least `minimum` / strictly above `above`.
    Used for hyper-parameters, whose mistakes would otherwise surface deep inside torch."""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or not math.isfinite(value):
        raise TalkfaceError(f"{name} must be {kind}, got {value!r}")
    if minimum is not None and value < minimum:
        raise TalkfaceError(f"{name} must be {kind} of at least {minimum}, got {value!r}")
    if above is not None and value <= above:
        raise TalkfaceError(f"{name} must be {kind} above {above}, got {value!r}")
