"""Load the two trained stages for generation and evaluation, from a Lightning `.ckpt` or a
`.safetensors` release (release.py), with a clear line for every way a file can be wrong.

Nothing in a file given to us runs code. A `.ckpt` is a pickle: it is read with
`torch.load(weights_only=True)`, whose unpickler builds only tensors and plain containers and
refuses any other Python object before creating it. Checkpoints of every recipe in configs/
(Lightning 2.6, torch 2.11: state dict, hyper-parameters, optimizer, loop and callback state, data
facts, config text) load with torch's own allow-list, so EXTRA_SAFE_GLOBALS is empty; a plain type
a future checkpoint needs goes there, never a class with behaviour. The hyper-parameters rebuild
the model, so a loss term they name outside the registry (`module.Class`) must already be imported:
loading a file never imports a module of its choosing.
"""

from __future__ import annotations

import json
import pickle
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from lightning_modules import FaceGenModule, LandmarkModule, SyncExpertModule
from lightning_modules.data_facts import DATA_FACTS_KEY
from talkface.audio.features import FeatureConfig
from talkface.errors import TalkfaceError
from talkface.generation.release import RELEASE_SUFFIX, RELEASE_WEIGHTS, looks_like_safetensors, read_release

STAGES = {
    LandmarkModule: ("stage-1 (landmark)", "--landmark-ckpt", "talkface fit -c landmark/sample"),
    FaceGenModule: ("stage-2 (face generator)", "--generator-ckpt", "talkface fit -c generator/sample"),
    SyncExpertModule: ("lip-sync expert", "--expert", "talkface fit -c sync/real"),
}
# Hyper-parameters of a stage that only matter for training and must not be acted on at load time.
INFERENCE_OVERRIDES = {
    LandmarkModule: {"detector": "joint", "detector_checkpoint": None},
    FaceGenModule: {},
    SyncExpertModule: {},
}
# Types our checkpoints hold beyond torch's weights_only allow-list (none: see the module docstring).
# Should one be added, register it with torch.serialization.add_safe_globals too: Lightning reads
# `--ckpt_path` itself (training_cli.py asks it for weights_only=True) and sees only the global list.
EXTRA_SAFE_GLOBALS: list = []


@dataclass(frozen=True)
class LoadedModel:
    model: torch.nn.Module  # in eval mode
    facts: dict  # the data facts (see lightning_modules/data_facts.py)
    source: dict  # where it came from: file name, epoch, global step


def safe_torch_load(path: str | Path, label: str | None = None):
    """`torch.load(weights_only=True)`: a file whose pickle names any other Python object is refused
    with one line (a TalkfaceError) before that object is created."""
    label = label or str(path)
    try:
        with torch.serialization.safe_globals(EXTRA_SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        RuntimeError,
        EOFError,
        ValueError,
        AttributeError,
        OSError,
    ) as error:
        text = str(error)
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if refused:
            raise TalkfaceError(
                f"{label}: refused: this checkpoint contains Python objects that are not plain data ({refused.group(1)}), "
                "and unpickling them could run code; talkface reads checkpoints with torch.load(weights_only=True). "
                "Only if you trust the file, load it yourself with weights_only=False and save its tensors and plain values again"
            ) from None
        detail = text.split("WeightsUnpickler error:")[-1].strip() or type(error).__name__
        raise TalkfaceError(f"{label}: not a readable PyTorch checkpoint ({detail.splitlines()[0][:120]})") from None


def read_checkpoint(path: str | Path, label: str | None = None) -> dict:
    """A Lightning checkpoint of a talkface model, read safely (see safe_torch_load)."""
    path = Path(path)
    label = label or str(path)
    if not path.is_file():
        raise TalkfaceError(f"{label}: no such checkpoint file")
    checkpoint = safe_torch_load(path, label)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise TalkfaceError(
            f"{label}: not a Lightning checkpoint of a talkface model (no state_dict / hyper_parameters)"
        )
    return checkpoint


def read_state_dict(path: str | Path, label: str) -> dict[str, torch.Tensor]:
    """The weights in a .ckpt or a release, for code that takes part of a model (a frozen detector)."""
    path = Path(path)
    if not path.is_file():
        raise TalkfaceError(f"{label}: no such checkpoint file")
    if _is_release(path):
        return read_release(path, label).weights
    checkpoint = safe_torch_load(path, label)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise TalkfaceError(f"{label}: not a Lightning checkpoint (no state_dict)")
    return checkpoint["state_dict"]


def check_resume_checkpoint(path: str | Path, label: str) -> dict:
    """Before Lightning reads a `--ckpt_path` file: it must load with weights_only=True, and the
    classes its hyper-parameters name (Lightning's CLI rebuilds the model from them: `_class_path`,
    loss terms) must be talkface's or already imported, since naming a module imports it. Returns the checkpoint."""
    checkpoint = safe_torch_load(path, label)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict):
        return checkpoint
    class_path = str(hparams.get("_class_path") or "")
    module = class_path.rpartition(".")[0]
    if module and module not in sys.modules:
        raise TalkfaceError(
            f"{label}: refused: it names the model class {class_path}, and reading it would import module {module}; "
            "import it yourself first if you trust it"
        )
    _check_loss_classes(hparams, label)
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
    """The model in eval mode and its data facts (see lightning_modules/data_facts.py), from a
    `.ckpt` or a `.safetensors` release.

    `option` is the command-line option that named the file, for the messages (default: generate's).
    """
    loaded = load_model(path, option or STAGES[expected][1], expected)
    return loaded.model, loaded.facts


def load_model(path: str | Path, option: str, expected: type | None = None) -> LoadedModel:
    """Either stage from either format; with `expected`, a file of the other stage is refused."""
    path = Path(path)
    label = f"{option} {path}" if option else str(path)
    if not path.is_file():
        raise TalkfaceError(f"{label}: no such checkpoint file")
    if _is_release(path):
        release = read_release(path, label)
        found = next((cls for cls in STAGES if cls.__name__ == release.stage), None)
        kind, init_args, weights = "model", release.init_args, release.weights
        facts, source = release.facts, release.source
    else:
        checkpoint = read_checkpoint(path, label)
        found = stage_of(checkpoint)
        kind, weights, facts = "checkpoint", checkpoint["state_dict"], _data_facts(checkpoint)
        init_args = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
        source = {"file": path.name, "epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step")}
    if expected is not None and found is not expected:
        name, _, how = STAGES[expected]
        what = STAGES[found][0] if found else "not a talkface"
        raise TalkfaceError(f"{label}: this is a {what} {kind}; {option} needs a {name} one (made by `{how}`)")
    if found is None:
        raise TalkfaceError(f"{label}: not a talkface stage-1, stage-2 or lip-sync expert {kind}")
    init_args = init_args | INFERENCE_OVERRIDES[found]
    _check_loss_classes(init_args, label)
    try:
        model = found(**init_args)
    except TypeError as error:
        raise TalkfaceError(f"{label}: made by another talkface version ({error})") from None
    _load_weights(model, weights, RELEASE_WEIGHTS[found.__name__] if kind == "model" else None, label)
    return LoadedModel(model.eval(), facts, source)


def inference_init_args(model: torch.nn.Module) -> dict:
    """The arguments that rebuild `model` for inference (what a release stores)."""
    return {k: v for k, v in dict(model.hparams).items() if not k.startswith("_")} | INFERENCE_OVERRIDES[type(model)]


def _is_release(path: Path) -> bool:
    return path.suffix.lower() == RELEASE_SUFFIX or looks_like_safetensors(path)


def _load_weights(model: torch.nn.Module, weights: dict, prefixes: tuple[str, ...] | None, label: str) -> None:
    """All of the model's weights (a .ckpt), or exactly those under `prefixes` (a release: the rest,
    such as the discriminator, is for training only and stays as initialised)."""
    try:
        if prefixes is None:
            model.load_state_dict(weights, strict=True)
            return
        needed = {key for key in model.state_dict() if key.startswith(prefixes)}
        missing, unexpected = sorted(needed - weights.keys()), sorted(weights.keys() - needed)
        if missing or unexpected:
            raise RuntimeError(
                f"missing keys {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                f"unexpected keys {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}"
            )
        model.load_state_dict(weights, strict=False)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:200]
        raise TalkfaceError(f"{label}: its weights do not match the model it describes ({detail})") from None


def _check_loss_classes(init_args: dict, label: str) -> None:
    """A loss term named by a dotted path is a module to import: never one a file picks (an import
    runs that module's code). Registered names, and modules the user has imported, are fine."""
    from losses.registry import registered_names

    losses = init_args.get("losses") or {}
    if not isinstance(losses, dict):
        return  # the model's own check reports it
    registered = set(registered_names())
    for name, spec in losses.items():
        class_path = str(spec.get("class_path", "") if isinstance(spec, dict) else spec)
        module = class_path.rpartition(".")[0]
        if class_path not in registered and module and module not in sys.modules:
            raise TalkfaceError(
                f"{label}: refused: its loss term {name!r} is {class_path}, outside talkface's registry, and loading "
                f"would import module {module}; import it yourself first if you trust it"
            )


def save_untrained(
    model: torch.nn.Module, path: str | Path, crop_size: int = 128, vocabulary: list[str] | None = None
) -> Path:
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
