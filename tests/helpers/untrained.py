"""Small untrained checkpoints, a face photo and a speech-like sound: enough for every test of
generation or serving except picture quality (weights do not change what the code does)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def untrained_inputs(folder: Path) -> dict[str, Path]:
    """Small untrained checkpoints (fast: generation speed does not depend on training), a real
    face photo and a 2 s speech-like sound: what the generation and server tests send and load."""
    import torch

    from lightning_modules import FaceGenModule, LandmarkModule
    from talkface.generation.checkpoints import save_untrained
    from tests.helpers.media_factory import astronaut_face, tone, write_audio_file

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    speech = tone(2.0, 22050, 220.0) * (0.6 + 0.4 * np.sin(np.linspace(0, 12, 44100)))
    cv2.imwrite(str(folder / "face.png"), cv2.cvtColor(astronaut_face(200), cv2.COLOR_RGB2BGR))
    return {
        "landmark": save_untrained(
            LandmarkModule(num_words=4, hidden=32, audio_dim=32, layers=1), folder / "landmark.ckpt", 128, list("ABCD")
        ),
        "generator": save_untrained(FaceGenModule(base_channels=8), folder / "generator.ckpt", 128, list("ABCD")),
        "image": folder / "face.png",
        "audio": write_audio_file(folder / "speech.mp3", speech.astype(np.float32), 22050, channels=2),
    }
