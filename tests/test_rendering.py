"""Landmark rendering: heatmap peaks and ranges, contour parts and colours, torch == numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkface.faces import (
    CONTOURS,
    PARTS,
    heatmap_channels,
    load_template,
    render_contours,
    render_heatmaps,
    render_heatmaps_torch,
)


@pytest.fixture
def template_points():
    """The template in a 128 crop, on integer pixels so each Gaussian peaks exactly at 1."""
    return np.rint(load_template(128)).astype(np.float32)


def test_per_point_heatmaps_peak_at_each_landmark(template_points):
    maps = render_heatmaps(template_points, 128, sigma=2.0, groups="points")
    assert maps.shape == (68, 128, 128) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    for channel, (x, y) in zip(maps, template_points, strict=False):
        row, col = np.unravel_index(np.argmax(channel), channel.shape)
        assert (col, row) == (int(x), int(y))
        assert channel[row, col] == pytest.approx(1.0)
        # sigma sets the width: one sigma away the value is exp(-1/2).
        assert channel[row, col + 2] == pytest.approx(np.exp(-0.5), rel=1e-5)


def test_part_heatmaps_are_the_max_of_their_points(template_points):
    per_point = render_heatmaps(template_points, 128, sigma=1.5, groups="points")
    parts = render_heatmaps(template_points, 128, sigma=1.5, groups="parts")
    assert parts.shape == (6, 128, 128) and heatmap_channels("parts") == 6
    for channel, index in zip(parts, PARTS.values(), strict=False):
        np.testing.assert_allclose(channel, per_point[list(index)].max(axis=0), atol=1e-6)
    # The mouth channels are lit at the lips and dark at the eyes.
    outer_lips, eyes = parts[4], parts[3]
    x, y = template_points[51].astype(int)
    assert outer_lips[y, x] == pytest.approx(1.0) and eyes[y, x] < 1e-3
    custom = render_heatmaps(template_points, 64, groups=[[48, 54], [8]])
    assert custom.shape == (2, 64, 64)


def test_points_outside_the_crop_do_not_break_rendering():
    points = np.full((68, 2), -50.0, dtype=np.float32)
    maps = render_heatmaps(points, 64, sigma=2.0)
    assert maps.shape == (6, 64, 64) and maps.max() < 1e-6


def test_contours_draw_each_part_closed_where_it_should(template_points):
    size = 256
    points = load_template(size)
    image = render_contours(points, size, thickness=1)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8

    def lit(p):  # any channel lit at (or right next to) point p
        x, y = np.rint(p).astype(int)
        return image[y - 1 : y + 2, x - 1 : x + 2].max() > 0

    # Non-empty where the mouth is, and in the lips' colour (red outer, magenta inner).
    mouth = image[
        int(points[48:60, 1].min()) : int(points[48:60, 1].max()) + 1, int(points[48, 0]) : int(points[54, 0]) + 1
    ]
    assert (mouth > 0).any()
    r, g, b = (mouth[..., c].astype(int) for c in range(3))
    assert ((r > 100) & (g == 0) & (b == 0)).any()  # red (anti-aliasing scales the intensity)
    assert ((r > 100) & (g == 0) & (np.abs(r - b) <= 1)).any()  # magenta
    # Closed: the segment from the last lip/eye point back to the first is drawn.
    # (The inner lips' chord 60-67 is too close to other strokes in this shape to tell; its
    # entry in CONTOURS is checked instead.)
    for first, last in [(48, 59), (36, 41), (42, 47)]:
        assert lit((points[first] + points[last]) / 2), (first, last)
    assert {(index.start, index.stop) for index, closed, _ in CONTOURS if closed} >= {
        (36, 42),
        (42, 48),
        (48, 60),
        (60, 68),
    }
    # Open: a brow is not closed into a loop (its chord's midpoint stays dark).
    assert not lit((points[17] + points[21]) / 2)
    # Single-channel mode.
    gray = render_contours(points, size, color=False)
    assert gray.shape == (size, size) and gray.max() == 255
    np.testing.assert_array_equal(gray > 0, image.max(axis=2) > 0)


@pytest.mark.parametrize("groups", ["parts", "points"])
def test_torch_renderer_matches_numpy(groups):
    rng = np.random.default_rng(0)
    points = (load_template(128)[None] + rng.normal(0, 3, (3, 68, 2))).astype(np.float32)
    batch = render_heatmaps_torch(torch.from_numpy(points), 128, sigma=2.5, groups=groups)
    assert batch.shape == (3, heatmap_channels(groups), 128, 128)
    for maps, sample in zip(batch.numpy(), points, strict=False):
        np.testing.assert_allclose(maps, render_heatmaps(sample, 128, sigma=2.5, groups=groups), atol=1e-5)
