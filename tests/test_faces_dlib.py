"""The dlib landmark backend: real photos and video frames, no face, RGBA, small faces, two faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from talkface.errors import MissingWeightsError, NoFaceError, TalkfaceError
from talkface.faces import SeveralFacesWarning, get_extractor
from talkface.faces.dlib_backend import DlibExtractor
from talkface.media import read_image, read_video
from tests.helpers.real_data import needs_real_data, real_files


@pytest.fixture(scope="module")
def dlib_extractor():
    return get_extractor("dlib")


def assert_plausible_face(points: np.ndarray, image: np.ndarray) -> None:
    """68 finite points inside the image, in face order: brows above eyes above mouth above chin."""
    assert points.shape == (68, 2) and points.dtype == np.float32
    assert np.isfinite(points).all()
    height, width = image.shape[:2]
    assert (points[:, 0] > -5).all() and (points[:, 0] < width + 5).all()
    assert (points[:, 1] > -5).all() and (points[:, 1] < height + 5).all()
    brows, eyes, mouth, chin = points[17:27, 1].mean(), points[36:48, 1].mean(), points[48:68, 1].mean(), points[8, 1]
    assert brows < eyes < mouth < chin
    assert points[36:42, 0].mean() < points[42:48, 0].mean()  # subject's right eye on the image's left


@pytest.mark.slow
@needs_real_data()
def test_finds_landmarks_on_real_photos(dlib_extractor):
    photos = real_files("faces")
    assert len(photos) == 10
    found = 0
    for path in photos:
        image = read_image(path)
        try:
            points = dlib_extractor.landmarks(image, name=path.name)
        except NoFaceError:
            continue
        assert_plausible_face(points, image)
        found += 1
    assert found >= 9


@pytest.mark.slow
@needs_real_data()
@pytest.mark.parametrize("path", real_files("videos"), ids=lambda p: p.name)
def test_finds_landmarks_on_first_video_frame(dlib_extractor, path):
    frame = read_video(path, with_audio=False).frames[0]
    assert_plausible_face(dlib_extractor.landmarks(frame, name=path.name), frame)


@pytest.mark.slow
def test_rgba_png_works(real_data, dlib_extractor):
    path = real_data / "faces" / "makeittalk_lab2.png"
    image = read_image(path)
    assert image.shape == (256, 256, 3)
    assert_plausible_face(dlib_extractor.landmarks(image, name=path.name), image)
    # A raw RGBA array is accepted too (alpha dropped).
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(dlib_extractor.landmarks(rgba), dlib_extractor.landmarks(image))


@pytest.mark.parametrize(
    "image",
    [
        np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))[..., None].repeat(3, axis=2),
        np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8),
    ],
    ids=["gradient", "noise"],
)
def test_no_face_raises_naming_the_input(dlib_extractor, image):
    with pytest.raises(NoFaceError, match=r"no face found in blank_input\.png") as error:
        dlib_extractor.landmarks(image, name="blank_input.png")
    assert "\n" not in str(error.value)


def test_grayscale_input(dlib_extractor):
    image = astronaut()
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    points = dlib_extractor.landmarks(gray)
    assert_plausible_face(points, gray)
    # Same face as in colour (HOG sees slightly different gradients: a few pixels at most).
    assert np.abs(points - dlib_extractor.landmarks(image)).mean() < 3


def test_small_face_found_by_upsampling(dlib_extractor):
    # Astronaut at 0.6x: the face box is ~55 px, under what HOG finds at the image's own scale.
    image = cv2.resize(astronaut(), None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    assert len(dlib_extractor._detector(image, 0)) == 0  # precondition: needs upsampling
    boxes = dlib_extractor.detect(image)
    assert len(boxes) == 1
    left, top, right, bottom = boxes[0]
    assert 40 < right - left < 75
    assert_plausible_face(dlib_extractor.landmarks(image), image)


def test_tiny_image_uses_two_upsamplings(dlib_extractor):
    # A 64 px face thumbnail: the face box is ~27 px, found only at x4.
    image = cv2.resize(astronaut()[20:260, 110:350], (64, 64), interpolation=cv2.INTER_AREA)
    assert len(dlib_extractor._detector(image, 1)) == 0  # precondition: one upsampling is not enough
    assert len(dlib_extractor.detect(image)) == 1
    assert DlibExtractor(max_upsample=1).detect(image) == []


def test_two_faces_returns_the_larger_and_warns(dlib_extractor):
    face = astronaut()[20:260, 110:350]
    canvas = np.full((300, 600, 3), 255, np.uint8)
    canvas[70:230, 20:180] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_AREA)  # smaller, left
    canvas[30:270, 330:570] = face  # larger, right
    assert len(dlib_extractor.detect(canvas)) == 2
    with pytest.warns(SeveralFacesWarning, match=r"2 faces found in two_faces\.png; using the largest"):
        points = dlib_extractor.landmarks(canvas, name="two_faces.png")
    assert points[:, 0].min() > 330  # all on the larger face
    alone = dlib_extractor.landmarks(face) + np.float32([330, 30])
    assert np.abs(points - alone).mean() < 1.0


def test_get_extractor_caches_and_rejects_unknown_names():
    assert get_extractor("dlib") is get_extractor("dlib")
    with pytest.raises(TalkfaceError, match=r"unknown landmark backend 'openpose'.*dlib.*face_alignment"):
        get_extractor("openpose")


def test_missing_predictor_file_is_a_clear_error(tmp_path):
    with pytest.raises(MissingWeightsError, match="does not exist"):
        DlibExtractor(predictor=tmp_path / "absent.dat")
