"""The dtype stage 2's convolutions run in during generation: bfloat16 where the hardware has it.

On a CPU with native bf16 instructions (AVX512-BF16 or AMX) or a GPU that supports it, the U-Net's
convolutions take about half the time in bfloat16, and the frames move by at most ~2 of 255 levels
(`UNetGenerator.lower_body` keeps everything that places pixels in float32). Elsewhere bfloat16 is
emulated and slower, so `auto` keeps float32 there.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch

from talkface.checks import PRECISIONS
from talkface.errors import TalkfaceError

if TYPE_CHECKING:
    from lightning_modules import FaceGenModule


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 convolutions natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # Private helpers of the pinned torch; should one vanish, float32 is the safe answer.
        probes = (
            getattr(torch.cpu, "_is_avx512_bf16_supported", None),
            getattr(torch.cpu, "_is_amx_tile_supported", None),
        )
        return any(probe is not None and probe() for probe in probes)
    return False


def dtype_for(precision: str, device: torch.device) -> torch.dtype | None:
    """bfloat16 or None (float32) for a `precision` of PRECISIONS on `device`."""
    if precision not in PRECISIONS:
        raise TalkfaceError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise TalkfaceError(f"precision bf16 runs on cpu or cuda, not {device.type}: use fp32 or auto")
        return torch.bfloat16
    return torch.bfloat16 if native_bf16(device) else None


def for_generation(model: FaceGenModule, dtype: torch.dtype | None, owned: bool) -> FaceGenModule:
    """`model` with its U-Net's body in `dtype` (None: as it is). A model the caller still holds
    (`owned` False) is copied first, since lowering its weights is lossy."""
    generator = model.generator
    if dtype is None or generator.body_dtype() == dtype:
        return model
    if not owned:
        model = copy.deepcopy(model)  # ~30 ms for the released generator
    model.generator.lower_body(dtype)
    return model


def precision_of(model: FaceGenModule) -> str:
    """What `model`'s U-Net body runs in, as PRECISIONS name it: bf16 or fp32."""
    return "bf16" if model.generator.body_dtype() == torch.bfloat16 else "fp32"
