"""The two stages, loaded once when the server starts (never per request)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from talkface.generation.checkpoints import LoadedModel


@dataclass(frozen=True)
class Models:
    landmark: LoadedModel  # keeps the data facts: generation needs the audio feature settings
    generator: LoadedModel
    names: tuple[str, str]  # the files they came from, for /healthz
    device: str
    backend: str  # face landmark detector
    precision: str  # of stage 2's convolutions: bf16 where the device has it natively, else fp32


def load_models(
    landmark_ckpt: str | Path | None, generator_ckpt: str | Path | None, device: str = "cpu", backend: str = "dlib"
) -> Models:
    """The given checkpoints, or the released models when neither is given (one clear line when
    they are not installed)."""
    import torch

    from lightning_modules import FaceGenModule, LandmarkModule
    from talkface.audio.phones import load_recognizer
    from talkface.faces import get_extractor
    from talkface.generation.checkpoints import feature_config, load_model
    from talkface.generation.precision import dtype_for, for_generation, precision_of
    from talkface.weights import released_checkpoints

    if landmark_ckpt is None and generator_ckpt is None:
        landmark_ckpt, generator_ckpt = released_checkpoints()
    landmark = load_model(landmark_ckpt, "--landmark-ckpt", LandmarkModule)
    generator = load_model(generator_ckpt, "--generator-ckpt", FaceGenModule)
    feature_config(landmark.model, landmark.facts)  # a model without its feature settings fails now, not per request
    get_extractor(backend)  # the face detector's model file too (~0.8 s), so no request waits for it
    if landmark.model.reads_phones:
        load_recognizer()  # and the phone recogniser's acoustic model
    # Stage 2 in bf16 where the device has it: lowered once, in place, so no request copies it.
    for_generation(generator.model, dtype_for("auto", torch.device(device)), owned=True)
    return Models(
        landmark,
        generator,
        (Path(landmark_ckpt).name, Path(generator_ckpt).name),
        device,
        backend,
        precision_of(generator.model),
    )
