"""The FAN backend: a clear error without weights; offline construction once the files exist.

No real FAN weights are available here, so the offline test writes randomly initialised
networks, built from face_alignment's own classes, under the real file names: it checks
file names, loading and the fit path, not landmark accuracy.
"""

from __future__ import annotations

import socket
import urllib.request

import numpy as np
import pytest
import torch
from skimage.data import astronaut

from talkface.errors import MissingWeightsError
from talkface.faces import clear_extractor_cache, get_extractor
from talkface.faces.fan_backend import FanExtractor, checkpoint_dir, weight_urls

FAN_FILE = "2DFAN4-11f355bf06.pth.tar"
S3FD_FILE = "s3fd-619a316812.pth"


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, with any earlier torch.hub.set_dir() undone for this test."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    clear_extractor_cache()
    yield home
    clear_extractor_cache()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to download or open a connection fails the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    import face_alignment.utils

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", refuse)


def test_weight_file_names_match_face_alignment():
    assert set(weight_urls("sfd")) == {FAN_FILE, S3FD_FILE}
    assert set(weight_urls("dlib")) == {FAN_FILE}


def test_checkpoint_dir_follows_torch_home(torch_home):
    assert checkpoint_dir() == torch_home / "hub" / "checkpoints"


def test_missing_weights_name_the_files_and_folder(torch_home, no_network):
    folder = torch_home / "hub" / "checkpoints"
    with pytest.raises(MissingWeightsError) as error:
        get_extractor("face_alignment", device="cpu")
    message = str(error.value)
    assert FAN_FILE in message and S3FD_FILE in message and str(folder) in message
    assert "\n" not in message
    # With dlib detection only the FAN file is needed; having the detector's file is not enough.
    folder.mkdir(parents=True)
    (folder / S3FD_FILE).write_bytes(b"")
    with pytest.raises(MissingWeightsError) as error:
        FanExtractor(device="cpu", detector="dlib")
    assert FAN_FILE in str(error.value) and S3FD_FILE not in str(error.value)


def write_random_weights(folder, detector: bool) -> None:
    """Random FAN (and S3FD) state dicts saved the way face_alignment loads them."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), folder / FAN_FILE)
    if detector:
        torch.save(s3fd().state_dict(), folder / S3FD_FILE)


@pytest.mark.slow
def test_offline_with_weights_in_place_sfd(torch_home, no_network):
    write_random_weights(torch_home / "hub" / "checkpoints", detector=True)
    extractor = get_extractor("fan", device="cpu", flip_input=False)
    assert isinstance(extractor, FanExtractor)
    image = astronaut()[20:260, 110:350]
    points = extractor.fit(image, (60.0, 50.0, 180.0, 190.0))
    assert points.shape == (68, 2) and points.dtype == np.float32 and np.isfinite(points).all()
    # Random weights find arbitrary boxes; the call path must still run and give boxes.
    boxes = extractor.detect(np.ascontiguousarray(image[::2, ::2]))
    assert isinstance(boxes, list) and all(len(box) == 4 for box in boxes)


@pytest.mark.slow
def test_offline_with_dlib_detection_needs_only_the_fan_file(torch_home, no_network):
    write_random_weights(torch_home / "hub" / "checkpoints", detector=False)
    extractor = FanExtractor(device="cpu", detector="dlib", flip_input=False)
    image = astronaut()
    boxes = extractor.detect(image)
    assert len(boxes) == 1  # dlib HOG finds the astronaut
    points = extractor.landmarks(image, name="astronaut")
    assert points.shape == (68, 2) and np.isfinite(points).all()
    # FAN's output lies in the crop it took around the box, whatever the weights.
    left, top, right, bottom = boxes[0]
    margin = 1.5 * (right - left)
    assert (points[:, 0] > left - margin).all() and (points[:, 0] < right + margin).all()
