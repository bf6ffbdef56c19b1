"""Load the two trained stages for generation, with a clear line for every way a file can be wrong."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import torch

from lightning_modules import FaceGenModule, LandmarkModule
from lightning_modules.data_facts import DATA_FACTS_KEY
from talkface.audio.features import FeatureConfig
from talkface.errors import TalkfaceError

STAGES = {
    LandmarkModule: ("stage-1 (landmark)", "--landmark-ckpt", "talkface fit -c configs/landmark/sample.yaml"),
    FaceGenModule: ("stage-2 (face generator)", "--generator-ckpt", "talkface fit -c configs/generator/sample.yaml"),
}
# Hyper-parameters of a stage that only matter for training and must not be acted on at load time.
INFERENCE_OVERRIDES = {LandmarkModule: {"detector": "joint", "detector_checkpoint": None}, FaceGenModule: {}}


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise TalkfaceError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, AttributeError) as error:
        raise TalkfaceError(f"{path}: not a readable PyTorch checkpoint ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise TalkfaceError(f"{path}: not a Lightning checkpoint of a talkface model (no state_dict / hyper_parameters)")
    return checkpoint


def stage_of(checkpoint: dict) -> type | None:
    """Which LightningModule wrote this checkpoint (by its recorded class, else by its weights)."""
    class_path = str(checkpoint["hyper_parameters"].get("_class_path", ""))
    for cls in STAGES:
        if class_path.endswith(cls.__name__):
            return cls
    keys = checkpoint["state_dict"].keys()
    if any(k.startswith("generator.audio_encoder.") for k in keys):
        return LandmarkModule
    if any(k.startswith("discriminator.") for k in keys):
        return FaceGenModule
    return None


def load_stage(path: str | Path, expected: type, option: str | None = None) -> tuple[torch.nn.Module, dict]:
    """The model in eval mode and the checkpoint's data facts (see lightning_modules/data_facts.py).

    `option` is the command-line option that named the file, for the messages (default: generate's).
    """
    checkpoint = read_checkpoint(path)
    found = stage_of(checkpoint)
    name, default_option, how = STAGES[expected]
    option = option or default_option
    if found is not expected:
        what = STAGES[found][0] if found else "not a talkface"
        raise TalkfaceError(f"{option} {path}: this is a {what} checkpoint; {option} needs a {name} one (made by `{how}`)")
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    hparams.update(INFERENCE_OVERRIDES[expected])
    try:
        model = expected(**hparams)
    except TypeError as error:
        raise TalkfaceError(f"{option} {path}: made by another talkface version ({error})") from None
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:200]
        raise TalkfaceError(f"{option} {path}: its weights do not match the model it describes ({detail})") from None
    return model.eval(), _data_facts(checkpoint)


def save_untrained(model: torch.nn.Module, path: str | Path, crop_size: int = 128, vocabulary: list[str] | None = None) -> Path:
    """A checkpoint with every key generation and evaluation read, for a model never trained:
    speed does not depend on the weights (benchmark), and tests of error paths need no training."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hparams = dict(model.hparams) | {"_class_path": f"lightning_modules.{type(model).__name__}"}
    facts = {"features": FeatureConfig().to_dict(), "crop_size": crop_size, "vocabulary": list(vocabulary or [])}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, DATA_FACTS_KEY: facts}, path)
    return path


def _data_facts(checkpoint: dict) -> dict:
    """Stored facts, or (checkpoints written before they were stored) the dataset's meta.json."""
    if DATA_FACTS_KEY in checkpoint:
        return dict(checkpoint[DATA_FACTS_KEY])
    data_dir = (checkpoint.get("datamodule_hyper_parameters") or {}).get("data_dir")
    meta = Path(str(data_dir)) / "meta.json" if data_dir else None
    if meta is not None and meta.is_file():
        facts = json.loads(meta.read_text())
        return {"features": facts["features"], "crop_size": facts["crop_size"], "vocabulary": facts["vocabulary"]}
    return {}


def feature_config(model: LandmarkModule, facts: dict) -> FeatureConfig:
    """The audio features this stage-1 model was trained on."""
    config = FeatureConfig(**facts["features"]) if "features" in facts else FeatureConfig()
    if config.dim != model.hparams.feature_dim:
        raise TalkfaceError(
            f"the landmark checkpoint expects {model.hparams.feature_dim}-dim audio features but does not record "
            f"which; retrain it with this talkface version"
        )
    return config
