"""What the mouth shade paints inside a newly opened mouth: upper teeth under the upper lip, then dark.

Trained for minutes on a CPU, the U-Net draws the inside of an opening mouth as a light blur, and
the mouth shade (`UNetGenerator._shade_mouth`) replaces it. Painted black, every open mouth is a
black hole. Here it is painted in the shade ellipse's own frame, so it follows the lips: a flat
band of teeth below the upper inner lip, its lower edge soft, ending before the mouth's corners,
with faint gaps between the incisors; below it the mouth's dark red. The band shows only once the
lips part by more than TEETH_FROM of the mouth's inner width, and grows with what they part
beyond it (`teeth` of that), approaching `teeth` inner-lip gaps in a wide-open mouth: a slightly
parted mouth stays dark, as it does on a real face. dlib, which scores lip sync, then still finds
the opening of the many slightly open frames; on held-out people a band from the first parting
cost 0.023 of opening correlation, this one 0.009 (MODEL_CARD.md).
Closed-form, no template file: a few element-wise operations on the crop.
"""

from __future__ import annotations

import torch

from talkface.networks.landmark_warp import mouth_axes

TEETH_DEPTH = 0.5  # what `talkface generate --teeth` paints: up to half the gap
TEETH_FROM = 0.1  # no teeth until the inner-lip gap is this share of the mouth's inner width
TEETH_RGB = (0.86, 0.83, 0.78)  # in [0, 1]: off-white, a little warm
CAVITY_RGB = (0.10, 0.04, 0.04)  # the mouth's dark red
EDGE = 0.12  # the teeth's lower edge fades over this share of the gap
SPAN = 0.75  # the teeth end at this share of the half width, fading over the last quarter
INCISORS = 6  # faint gaps between teeth: cycles of |cos| over the half width


def mouth_inside(target: torch.Tensor, size: int, teeth: float) -> torch.Tensor:
    """(B, 3, size, size) in [-1, 1]: the painted inside of the mouth of the (B, 68, 2) target
    landmarks ([0, 1] units); `teeth`: the band's depth in a wide-open mouth, in inner-lip gaps (0: all dark)."""
    along, across, half_width, gap = mouth_axes(target, size)
    along = along / half_width[:, None, None]  # -1 and 1 at the inner corners
    gap = gap.clamp_min(1e-3)
    depth = across / gap[:, None, None] + 0.5  # 0 at the upper inner lip, 1 at the lower
    # The band's depth in gaps: `teeth` of the share of the gap beyond TEETH_FROM of the width.
    teeth_depth = (teeth * (1 - TEETH_FROM * 2 * half_width / gap)).clamp_min(0)[:, None, None]
    band = ((teeth_depth - depth) / EDGE).clamp(0, 1) * (teeth_depth > 0)
    band = band * ((SPAN - along.abs()) / 0.25).clamp(0, 1)
    band = band * (0.85 + 0.15 * torch.cos(along * torch.pi * INCISORS).abs())
    white = torch.tensor(TEETH_RGB, device=target.device)[None, :, None, None]
    dark = torch.tensor(CAVITY_RGB, device=target.device)[None, :, None, None]
    return (dark + (white - dark) * band[:, None]) * 2 - 1
