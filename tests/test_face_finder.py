"""The photo's landmarks found in a helper process: the same points, the same errors, no hang."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from talkface.errors import NoFaceError
from talkface.faces import clear_extractor_cache, get_extractor
from talkface.generation.face_finder import FaceFinder, in_background
from talkface.generation.face_input import Photo, find_landmarks
from tests.helpers.media_factory import astronaut_face

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the helper process forks: Linux only")


@pytest.fixture
def fresh_process_state():
    """As in a new `talkface generate` process: no landmark model loaded yet."""
    clear_extractor_cache()
    yield
    clear_extractor_cache()


def test_helper_finds_the_points_this_process_finds(fresh_process_state):
    photo = Photo(astronaut_face(256), "astronaut", [])
    finder = FaceFinder(photo)
    assert finder.in_background
    points, notes = finder.result()
    expected, expected_notes = find_landmarks(photo.image, photo.name)
    np.testing.assert_array_equal(points, expected)
    assert notes == expected_notes == []
    assert finder.model_seconds > 0 and finder.find_seconds > 0
    assert not finder.in_background  # the helper has exited and been joined


def test_a_photo_without_a_face_raises_the_users_error_here(fresh_process_state):
    photo = Photo(np.full((200, 200, 3), 128, np.uint8), "grey.png", [])
    finder = FaceFinder(photo)
    assert finder.in_background
    with pytest.raises(NoFaceError, match="no face found in grey.png"):
        finder.result()


def test_a_helper_that_died_is_replaced_by_this_process(fresh_process_state):
    photo = Photo(astronaut_face(256), "astronaut", [])
    finder = FaceFinder(photo)
    finder._process.kill()  # as the out-of-memory killer would
    points, _ = finder.result()
    np.testing.assert_array_equal(points, find_landmarks(photo.image, photo.name)[0])


def test_a_model_already_loaded_is_used_in_this_process(fresh_process_state):
    get_extractor("dlib")  # what `talkface serve` does at start-up
    assert not in_background("dlib")
    finder = FaceFinder(Photo(astronaut_face(256), "astronaut", []))
    assert not finder.in_background and finder.ready()
    points, _ = finder.result()
    assert points.shape == (68, 2)
