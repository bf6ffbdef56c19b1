"""Similarity alignment to the template: invariance, round trips, paste-back, smoothing."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from talkface.errors import TalkfaceError
from talkface.faces import (
    STABLE_POINTS,
    align_face,
    estimate_alignment,
    get_extractor,
    invert,
    load_template,
    paste_back,
    similarity_transform,
    smooth_transforms,
    transform_points,
    warp_to_crop,
)
from talkface.faces.template import TEMPLATE_FILE, mirror_permutation, rebuild


def similarity(angle_deg: float, scale: float, shift: tuple[float, float], center=(0.0, 0.0)) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D(center, angle_deg, scale)
    matrix[:, 2] += shift
    return matrix


@pytest.fixture(scope="module")
def astronaut_landmarks():
    return astronaut(), get_extractor("dlib").landmarks(astronaut(), name="astronaut")


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, (30, 2))
    truth = similarity(23.0, 1.7, (12.0, -40.0))
    np.testing.assert_allclose(similarity_transform(src, transform_points(src, truth)), truth, atol=1e-9)


def test_template_aligns_to_itself_as_identity():
    template = load_template(128)
    np.testing.assert_allclose(estimate_alignment(template, 128), np.eye(2, 3), atol=1e-5)


def test_alignment_is_invariant_to_a_similarity_of_the_points(astronaut_landmarks):
    _, points = astronaut_landmarks
    moved = transform_points(points.astype(np.float64), similarity(-17.0, 0.6, (40.0, 25.0), (256.0, 256.0)))
    aligned = transform_points(points, estimate_alignment(points, 128))
    aligned_moved = transform_points(moved, estimate_alignment(moved, 128))
    np.testing.assert_allclose(aligned_moved, aligned, atol=1e-4)


@pytest.mark.parametrize("angle, scale, shift", [(12.0, 0.9, (10.0, 10.0)), (-10.0, 1.2, (-15.0, 25.0))])
def test_real_image_aligns_back_within_a_pixel(astronaut_landmarks, angle, scale, shift):
    """Warp the photo, re-detect its landmarks with dlib, and align both: same crop geometry."""
    image, points = astronaut_landmarks
    extractor = get_extractor("dlib")
    moved_image = cv2.warpAffine(image, similarity(angle, scale, shift, (230.0, 130.0)), (512, 512))
    moved_points = extractor.landmarks(moved_image, name="moved astronaut")

    crop, matrix = align_face(image, points, 128)
    moved_crop, moved_matrix = align_face(moved_image, moved_points, 128)
    error = np.linalg.norm(transform_points(points, matrix) - transform_points(moved_points, moved_matrix), axis=1)
    assert error.mean() < 1.0
    # The crops show the same face the same way (resampling and dlib jitter aside).
    assert np.abs(crop.astype(np.float32) - moved_crop).mean() < 8


def test_aligned_face_lands_on_the_template(astronaut_landmarks):
    image, points = astronaut_landmarks
    for size in (128, 256):
        crop, matrix = align_face(image, points, size)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
        aligned = transform_points(points, matrix)
        template = load_template(size)
        # Stable points fit the template closely; the whole face stays inside the crop.
        assert np.linalg.norm(aligned[STABLE_POINTS] - template[STABLE_POINTS], axis=1).mean() < 0.03 * size
        assert (aligned > 0).all() and (aligned < size - 1).all()
    # 256 is 128 at twice the resolution (unit-square template, pixel centres at integers).
    m128, m256 = estimate_alignment(points, 128), estimate_alignment(points, 256)
    np.testing.assert_allclose(transform_points(points, m256), 2 * transform_points(points, m128) + 0.5, atol=1e-3)


def test_crop_and_inverse_round_trip_points(astronaut_landmarks):
    _, points = astronaut_landmarks
    matrix = estimate_alignment(points, 128)
    back = transform_points(transform_points(points, matrix), invert(matrix))
    np.testing.assert_allclose(back, points, atol=1e-3)
    np.testing.assert_allclose(invert(invert(matrix)), matrix, atol=1e-9)


def test_downscaling_crop_matches_a_direct_crop(astronaut_landmarks):
    """The area-averaged path for big faces gives the same framing as a plain warp."""
    image, points = astronaut_landmarks
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    big_points = (points + 0.5) * 3 - 0.5
    crop, _ = align_face(image, points, 128)
    big_crop, big_matrix = align_face(big, big_points, 128)
    assert np.sqrt(abs(np.linalg.det(big_matrix[:, :2]))) < 0.75  # the pre-reduction path is taken
    assert np.abs(crop.astype(np.float32) - big_crop).mean() < 3


def test_paste_back_restores_the_face_region(astronaut_landmarks):
    image, points = astronaut_landmarks
    crop, matrix = align_face(image, points, 256)
    blank = np.zeros_like(image)
    pasted = paste_back(blank, crop, matrix, feather=0.1)
    assert pasted.shape == image.shape and pasted.dtype == image.dtype
    # Inside the face (eyes to chin), the pasted crop reproduces the photo.
    left, top = points.min(axis=0).astype(int) + 5
    right, bottom = points.max(axis=0).astype(int) - 5
    region = np.s_[top:bottom, left:right]
    assert np.abs(pasted[region].astype(np.float32) - image[region]).mean() < 4
    # Far from the crop the original image is untouched.
    assert (pasted[-20:, :] == 0).all() and (pasted[:, -20:] == 0).all()
    # Pasting the photo's own crop into the photo changes the face region very little.
    same = paste_back(image, crop, matrix)
    assert np.abs(same.astype(np.float32) - image).mean() < 1


@pytest.mark.parametrize("size", [0, 63, 65, 100.0, "128"])
def test_invalid_crop_sizes_are_clear_errors(astronaut_landmarks, size):
    _, points = astronaut_landmarks
    with pytest.raises(TalkfaceError, match="crop size .* even number of pixels >= 64"):
        estimate_alignment(points, size)


def test_other_even_crop_sizes_work(astronaut_landmarks):
    image, points = astronaut_landmarks
    crop, _ = align_face(image, points, 96)
    assert crop.shape == (96, 96, 3)
    assert warp_to_crop(image, np.eye(2, 3), 64).shape == (64, 64, 3)


def test_smooth_transforms_removes_jitter_and_keeps_constant_sequences():
    rng = np.random.default_rng(3)
    base = similarity(5.0, 0.5, (-30.0, -20.0))
    constant = np.repeat(base[None], 20, axis=0)
    np.testing.assert_allclose(smooth_transforms(constant, 5), constant, atol=1e-12)
    jittery = constant.copy()
    jittery[:, :, 2] += rng.normal(0, 2.0, (20, 2))
    smoothed = smooth_transforms(jittery, 5)
    assert smoothed.shape == jittery.shape
    assert np.abs(np.diff(smoothed[:, :, 2], axis=0)).mean() < 0.5 * np.abs(np.diff(jittery[:, :, 2], axis=0)).mean()
    np.testing.assert_allclose(smooth_transforms(jittery, 1), jittery)
    # The average of similarity matrices is still a similarity (no shear).
    linear = smooth_transforms(np.stack([similarity(a, 0.5, (0, 0)) for a in range(0, 20)]), 7)[:, :, :2]
    np.testing.assert_allclose(linear[:, 0, 0], linear[:, 1, 1])
    np.testing.assert_allclose(linear[:, 0, 1], -linear[:, 1, 0])


def test_template_is_upright_symmetric_and_well_framed():
    unit = (load_template(128) + 0.5) / 128  # back to the unit square
    assert unit.shape == (68, 2)
    eyes_y = unit[36:48, 1].mean()
    mouth_y = unit[48:68, 1].mean()
    assert 0.3 < eyes_y < 0.45 and 0.68 < mouth_y < 0.8
    assert abs(unit[36:42, 1].mean() - unit[42:48, 1].mean()) < 1e-4  # eye line horizontal
    np.testing.assert_allclose(unit[:, 0] + unit[mirror_permutation(), 0], 1.0, atol=1e-4)  # symmetric about x=0.5
    np.testing.assert_allclose(unit[:, 1], unit[mirror_permutation(), 1], atol=1e-4)
    # The whole face, with margins, is inside the crop.
    assert unit.min() > 0.1 and unit.max() < 0.95 and unit[17:27, 1].min() > 0.2


@pytest.mark.slow
def test_template_rebuild_reproduces_the_shipped_file(real_data, tmp_path):
    record = rebuild(real_data / "faces", path=tmp_path / "template.json")
    assert len(record["sources"]) == 11
    shipped = json.loads(TEMPLATE_FILE.read_text())
    np.testing.assert_allclose(np.array(record["points"]), np.array(shipped["points"]), atol=2e-5)
    assert json.loads((tmp_path / "template.json").read_text())["points"] == shipped["points"]
