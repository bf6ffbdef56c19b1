"""What `talkface generate` pastes at the photo's resolution is what stage 2 renders on the crop.

The two paths call the network differently (the crop path through `FaceGenModule`, whose order is
reference, reference landmarks, target; the photo-resolution path through the U-Net itself, whose
order is reference, target, reference landmarks). A swap there once left every user's video with
its mouth shut while `talkface evaluate`, on crops, scored the open one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_modules import FaceGenModule
from talkface.faces import warp_to_crop
from talkface.faces.warp_paste import WarpPaster
from talkface.generation.checkpoints import load_stage
from talkface.generation.face_input import load_face
from talkface.generation.pipeline import _Renderer
from talkface.networks.pixel_range import to_uint8, to_unit
from talkface.weights import GENERATOR
from tests.helpers.media_factory import astronaut_face
from tests.test_generator_networks import open_mouth


@pytest.fixture(scope="module")
def released():
    model, _ = load_stage(GENERATOR, FaceGenModule)
    return model.eval()


def test_the_pasted_mouth_opens_as_the_crop_path_opens_it(released):
    size = int(released.hparams.image_size)
    face = load_face(astronaut_face(2 * size), size)  # the photo at twice the crop's resolution
    photo_landmarks = torch.from_numpy(face.landmarks)
    target = open_mouth(photo_landmarks[None], 0.04)  # the jaw and lower lip 5 crop pixels down
    with torch.no_grad():
        reference = to_unit(torch.from_numpy(face.crop).permute(2, 0, 1))
        on_crop = to_uint8(released.render_sequence(reference, photo_landmarks, target))[0].permute(1, 2, 0).numpy()
        parts = next(_Renderer(released, face, torch.device("cpu"), 8, parts=True).frames(target))
    pasted = WarpPaster(face.image, face.matrix, size).paste_warp(*parts)
    pasted_on_crop = warp_to_crop(pasted, face.matrix, size)

    mouth = target[0, 48:68].numpy() * size
    (x0, y0), (x1, y1) = np.floor(mouth.min(0)).astype(int) - 2, np.ceil(mouth.max(0)).astype(int) + 2
    region = (slice(y0, y1), slice(x0, x1))
    moved = np.abs(on_crop[region].astype(int) - face.crop[region]).mean()
    apart = np.abs(pasted_on_crop[region].astype(int) - on_crop[region]).mean()
    assert moved > 15, moved  # the crop path opened the mouth
    assert apart < moved / 3, (apart, moved)  # and the photo-resolution path opened it alike
