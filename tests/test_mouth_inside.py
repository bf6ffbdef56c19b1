"""`mouth_teeth`: the mouth shade paints upper teeth above a dark cavity instead of a black hole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkface.networks.landmark_warp import mouth_ellipse
from talkface.networks.mouth_inside import TEETH_FROM, mouth_inside
from talkface.networks.unet_generator import UNetGenerator
from tests.helpers.real_data import needs_real_data, real_files
from tests.test_generator_networks import open_mouth, template_landmarks

SIZE = 128


def _closed_and_opened() -> tuple[torch.Tensor, torch.Tensor]:
    closed = template_landmarks(SIZE)
    closed[:, [65, 66, 67], :] = closed[:, [63, 62, 61], :]  # lower inner lip on the upper one
    return closed, open_mouth(closed, 0.08)


def _brightness_down_the_mouth(image: torch.Tensor, landmarks: torch.Tensor) -> list[float]:
    """Mean brightness of the pixel rows at 10 %, 50 % and 90 % of the way from the upper inner
    lip to the lower one, in the middle of the mouth."""
    centre, _, half_width, gap = mouth_ellipse(landmarks * SIZE)
    x, top = int(centre[0, 0]), float(centre[0, 1] - gap[0] / 2)
    half = int(half_width[0] / 3)
    return [
        float(image[0, :, int(top + share * float(gap[0])), x - half : x + half].mean()) for share in (0.1, 0.5, 0.9)
    ]


def test_teeth_under_the_upper_lip_then_dark_and_none_without_teeth():
    _, opened = _closed_and_opened()
    upper, middle, lower = _brightness_down_the_mouth(mouth_inside(opened, SIZE, 0.5), opened)
    assert upper > 0.5 and middle < upper and lower < -0.7  # white teeth, their soft edge, the cavity
    assert mouth_inside(opened, SIZE, 0.0).max() < -0.7  # no teeth: all the cavity's dark red


def test_a_slightly_parted_mouth_stays_dark_and_the_teeth_grow_as_it_opens():
    closed, _ = _closed_and_opened()
    _, _, half_width, _ = mouth_ellipse(closed * SIZE)
    width = float(2 * half_width[0]) / SIZE  # the inner width, in crop units
    parted = open_mouth(closed, 0.8 * TEETH_FROM * width)  # lips apart by less than TEETH_FROM of the width
    assert mouth_ellipse(parted * SIZE)[3][0] > 1.0  # a real gap, over a pixel
    assert mouth_inside(parted, SIZE, 0.5).max() < -0.7  # all dark: no teeth yet
    shares = []
    for amount in (2.0, 4.0):  # wider and wider open
        opened = open_mouth(closed, amount * TEETH_FROM * width)
        big = 4 * SIZE  # enough pixels across the gap to measure the band's depth
        centre, _, _, gap = mouth_ellipse(opened * big)
        x, top, gap = int(centre[0, 0]), float(centre[0, 1] - gap[0] / 2), float(gap[0])
        column = mouth_inside(opened, big, 0.5)[0, :, int(top) : int(top + gap), x].mean(dim=0)
        shares.append(float((column > 0.3).sum()) / gap)  # the teeth's height between the lips, in gaps
    assert 0.1 < shares[0] < shares[1] <= 0.5 + 0.1  # the band deepens towards TEETH_DEPTH gaps


def test_the_generator_paints_teeth_only_where_the_shade_does():
    torch.manual_seed(0)
    settings = dict(image_size=SIZE, base_channels=8, depth=3, residual_blocks=1, warp_reference=True, mouth_shade=0.85)
    black = UNetGenerator(**settings).eval()
    teeth = UNetGenerator(**settings, mouth_teeth=0.5).eval()
    teeth.load_state_dict(black.state_dict())
    reference = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    closed, opened = _closed_and_opened()
    with torch.no_grad():
        with_black, with_teeth = black.generate(reference, opened, closed), teeth.generate(reference, opened, closed)
        assert torch.equal(
            teeth.generate(reference, closed, closed).image, black.generate(reference, closed, closed).image
        )
    assert (
        _brightness_down_the_mouth(with_teeth.image, opened)[0]
        > _brightness_down_the_mouth(with_black.image, opened)[0] + 0.5
    )
    assert torch.equal(with_teeth.mask, with_black.mask)  # the same pixels are painted, only their colour differs
    outside = with_black.mask == 0
    assert torch.equal(with_teeth.image.masked_select(outside), with_black.image.masked_select(outside))


def test_mouth_teeth_out_of_range_is_one_clear_error():
    from lightning_modules import FaceGenModule
    from talkface.errors import TalkfaceError

    with pytest.raises(TalkfaceError, match="mouth_teeth must be at most 1"):
        FaceGenModule(warp_reference=True, mouth_shade=0.85, mouth_teeth=1.5)


@pytest.mark.slow
@needs_real_data()
def test_generate_teeth_paints_the_opening_mouth_from_the_command_line(tmp_path):
    """The released models, a closed-mouthed real photo and real speech, with and without
    `--teeth`: the same video outside the mouth, a brighter inside where the mouth opens."""
    from talkface.cli import main
    from talkface.media import read_video

    photo = next(p for p in real_files("faces") if p.stem == "makeittalk_natalie")
    speech = real_files("audio")[0]
    args = ["generate", "--image", str(photo), "--audio", str(speech), "--quiet"]
    assert main([*args, "--out", str(tmp_path / "dark.mp4")]) == 0
    assert main([*args, "--out", str(tmp_path / "teeth.mp4"), "--teeth"]) == 0
    dark, teeth = (read_video(tmp_path / name).frames.astype(float) for name in ("dark.mp4", "teeth.mp4"))
    assert dark.shape == teeth.shape
    change = np.abs(teeth - dark).mean(axis=3)  # (T, H, W)
    rows, cols = np.nonzero(change.max(axis=0) > 30)  # where the paint changed pixels
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    assert 0 < bottom - top < 0.1 * dark.shape[1] and right - left < 0.2 * dark.shape[2]  # the mouth only
    outside = np.ones(change.shape[1:], bool)
    outside[top - 5 : bottom + 5, left - 5 : right + 5] = False
    assert change[:, outside].mean() < 1.0  # elsewhere only the encoder's noise
    brighter = (teeth - dark).mean(axis=3)[:, top:bottom, left:right].mean(axis=(1, 2))
    assert brighter.max() > 10  # where the mouth opens most, the teeth are light
