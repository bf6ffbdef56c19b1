"""Stage 2's geometry: the landmark-driven warp of the photo, in the network and at photo resolution."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from talkface.faces.warp_paste import WarpPaster
from talkface.networks.landmark_warp import displacement_field, warp_to_landmarks
from talkface.networks.unet_generator import UNetGenerator
from tests.test_generator_networks import open_mouth, template_landmarks


def field_at(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The field (B, 2, S, S) read at normalised points (B, N, 2) → (B, N, 2)."""
    return F.grid_sample(field, (points * 2 - 1)[:, :, None], align_corners=False)[..., 0].transpose(1, 2)


def test_the_field_moves_each_landmark_where_it_should_and_pins_the_border():
    reference = template_landmarks(128, batch=2)
    target = open_mouth(reference, 0.04)
    field = displacement_field(reference, target, 128)
    wanted = reference - target  # output pixel at a target point reads the reference point
    moved = [56, 57, 58, 65, 66, 67, 8]
    error = (field_at(field, target)[:, moved] - wanted[:, moved]).norm(dim=-1)
    assert error.mean() < 0.25 * wanted[:, moved].norm(dim=-1).mean()
    border = torch.cat([field[..., 0, :], field[..., :, 0], field[..., :, -1]], dim=-1)  # the chin nears the bottom
    assert border.abs().max() < 0.15 * wanted.abs().max()  # the background (nearly) stays put


def test_no_motion_is_no_change():
    image = torch.rand(1, 3, 64, 64)
    landmarks = template_landmarks(64)
    warped, field = warp_to_landmarks(image, landmarks, landmarks)
    assert field.abs().max() < 1e-6 and torch.allclose(warped, image, atol=1e-5)


def test_a_warping_generator_starts_from_the_warp_and_says_how_it_moved():
    torch.manual_seed(0)
    generator = UNetGenerator(image_size=64, base_channels=8, depth=3, residual_blocks=1, warp_reference=True)
    reference = torch.rand(2, 3, 64, 64) * 2 - 1
    landmarks = template_landmarks(64, batch=2)
    out = generator.generate(reference, open_mouth(landmarks), landmarks)
    warped, field = warp_to_landmarks(reference, landmarks, open_mouth(landmarks))
    assert torch.allclose(out.field, field)
    assert out.mask.mean() < 0.1  # untrained, it trusts the warp
    assert (out.image - warped).abs().mean() < 0.1 < (out.image - reference).abs().mean() + 0.1


def test_warp_paster_keeps_the_photo_without_motion_and_moves_it_with_a_field():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)
    matrix = np.array([[0.8, 0.0, -30.0], [0.0, 0.8, -20.0]])  # photo pixels → crop pixels
    paster = WarpPaster(photo, matrix, 128, feather=0.1)
    still = paster.paste_warp(
        np.zeros((128, 128, 2), np.float32), np.zeros((128, 128, 3), np.uint8), np.zeros((128, 128))
    )
    assert np.array_equal(still, photo)
    shift = np.zeros((128, 128, 2), np.float32)
    shift[..., 0] = 4 / 128  # read 4 crop pixels (5 photo pixels) to the right
    moved = paster.paste_warp(shift, np.zeros((128, 128, 3), np.uint8), np.zeros((128, 128)))
    centre = (slice(90, 110), slice(110, 130))  # well inside the crop, past the feathered edge
    expected = photo[90:110, 115:135]
    assert np.abs(moved[centre].astype(int) - expected).mean() < 1.0
    drawn = paster.paste_warp(
        np.zeros((128, 128, 2), np.float32), np.full((128, 128, 3), 7, np.uint8), np.ones((128, 128))
    )
    assert np.all(drawn[centre] == 7) and np.array_equal(drawn[:5], photo[:5])  # outside the crop: the photo


def test_the_inner_mouth_is_always_drawn_once_the_lips_part():
    from talkface.networks.landmark_warp import inner_mouth_mask

    landmarks = template_landmarks(64)
    closed = landmarks.clone()
    closed[:, [65, 66, 67], :] = closed[:, [63, 62, 61], :]  # lower inner lip on the upper one
    opened = open_mouth(landmarks, 0.08)
    assert inner_mouth_mask(closed, 64).max() < 0.01
    mask = inner_mouth_mask(opened, 64)
    gap_centre = ((opened[0, [61, 62, 63]].mean(0) + opened[0, [65, 66, 67]].mean(0)) / 2 * 64).long()
    assert mask[0, 0, gap_centre[1], gap_centre[0]] > 0.9
    assert mask[0, 0, :10].max() < 0.01  # nowhere near the eyes
    generator = UNetGenerator(image_size=64, base_channels=8, depth=3, residual_blocks=1, warp_reference=True)
    out = generator.generate(torch.rand(1, 3, 64, 64) * 2 - 1, opened, landmarks)
    assert torch.all(out.mask >= mask - 1e-6)


def test_sub_pixel_motion_leaves_the_photo_exact_and_real_motion_whole():
    from talkface.networks.landmark_warp import settle_small_motion

    field = torch.zeros(1, 2, 64, 64)
    field[:, 0, :, :32] = 0.1 / 64  # a tenth of a pixel: invisible, but resampling would blur
    field[:, 0, :, 32:] = 2.0 / 64  # two pixels: real motion
    settled = settle_small_motion(field)
    assert torch.all(settled[..., :32] == 0) and torch.equal(settled[..., 32:], field[..., 32:])


def test_at_inference_a_warping_generator_keeps_the_photos_exact_pixels_where_nothing_moves():
    torch.manual_seed(0)
    generator = UNetGenerator(image_size=64, base_channels=8, depth=3, residual_blocks=1, warp_reference=True).eval()
    reference = torch.rand(1, 3, 64, 64) * 2 - 1
    landmarks = template_landmarks(64)
    landmarks[:, [65, 66, 67], :] = landmarks[:, [63, 62, 61], :]  # lips closed: no mouth to draw
    with torch.no_grad():
        out = generator.generate(reference, landmarks, landmarks)
    exact = (out.image == reference).all(dim=1).float().mean()
    assert exact > 0.95  # the resting mask (~0.05) counts as 0 and nothing moves: the photo's own pixels


def test_mouth_shade_darkens_only_the_newly_opened_inside_and_only_at_inference():
    from talkface.networks.landmark_warp import new_mouth_opening_mask

    torch.manual_seed(0)
    settings = dict(image_size=64, base_channels=8, depth=3, residual_blocks=1, warp_reference=True)
    plain = UNetGenerator(**settings).eval()
    shaded = UNetGenerator(**settings, mouth_shade=0.85, mouth_shade_height=1.6).eval()
    shaded.load_state_dict(plain.state_dict())
    reference = torch.rand(1, 3, 64, 64) * 2 - 1
    landmarks = template_landmarks(64)
    closed = landmarks.clone()
    closed[:, [65, 66, 67], :] = closed[:, [63, 62, 61], :]  # lower inner lip on the upper one
    opened = open_mouth(closed, 0.08)
    with torch.no_grad():
        before, after = plain.generate(reference, opened, closed), shaded.generate(reference, opened, closed)
    # (1 − s)·frame + s·black, s = 0.85 × the inside the closed-mouthed photo does not show.
    shade = 0.85 * new_mouth_opening_mask(opened, closed, 64, 1.6)
    assert shade.max() > 0.8
    assert torch.allclose(after.image, before.image - shade * (before.image + 1), atol=1e-5)
    # A hard edge: nothing beyond the mouth's corners (a soft tail drew a dark line over the cheeks).
    corners = opened[0, [60, 64], 0] * 64
    columns = shade[0, 0].amax(dim=0)
    assert columns[: int(corners.min()) - 1].max() == 0 and columns[int(corners.max()) + 2 :].max() == 0
    # The frame is still mask·generated + (1 − mask)·warp: the full-resolution paste, which reads
    # the generated pixels and the mask, shades the same pixels alike.
    warped, _ = warp_to_landmarks(reference, closed, opened)
    recomposed = after.mask * after.generated + (1 - after.mask) * warped
    assert torch.allclose(recomposed, after.image, atol=1e-5)
    assert after.generated.min() >= -1 - 1e-6 and after.generated.max() <= 1 + 1e-6
    # What the photo already shows is kept: a photo as open as the target (its teeth) is not shaded.
    with torch.no_grad():
        assert torch.equal(
            shaded.generate(reference, opened, opened).image, plain.generate(reference, opened, opened).image
        )
        assert torch.equal(
            shaded.generate(reference, closed, closed).image, plain.generate(reference, closed, closed).image
        )
    # Training never sees it: the U-Net is trained on what it draws.
    shaded.train(), plain.train()
    assert torch.equal(
        shaded.generate(reference, opened, closed).image, plain.generate(reference, opened, closed).image
    )


def test_mouth_shade_out_of_range_is_one_clear_error():
    import pytest

    from lightning_modules import FaceGenModule
    from talkface.errors import TalkfaceError

    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(TalkfaceError, match="mouth_shade"):
            FaceGenModule(image_size=64, depth=3, warp_reference=True, mouth_shade=bad)
    with pytest.raises(TalkfaceError, match="mouth_shade_height"):
        FaceGenModule(image_size=64, depth=3, warp_reference=True, mouth_shade=0.5, mouth_shade_height=0)
