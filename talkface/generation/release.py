"""The release format: a trained stage as one `.safetensors` file, weights and plain metadata only.

A Lightning `.ckpt` is a pickle: reading one from someone else is only safe with
`torch.load(weights_only=True)` (see checkpoints.py), and it carries what training needs and
generation does not (optimizer state, the stage-2 discriminator, callback state). A release holds
only the tensors generation and evaluation need, plus, in the safetensors metadata (string → string,
the values JSON-encoded):

- `format`: RELEASE_FORMAT;
- `stage`: the LightningModule's class name (LandmarkModule or FaceGenModule);
- `init_args`: its hyper-parameters with the inference overrides already applied (what
  `load_stage` passes to the class);
- `talkface_data`: the data facts (lightning_modules/data_facts.py): audio features, crop size,
  vocabulary;
- `dtype`: float32, or float16 with `--fp16` (floating tensors only; loading casts them back to
  float32);
- `source`: the checkpoint it was exported from (file name, epoch, global step).

Reading a safetensors file runs no code: its header is JSON and its body raw tensor bytes.
`talkface export` writes one (export_model); `load_stage` reads both formats.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from talkface.errors import TalkfaceError

RELEASE_FORMAT = "talkface-release/1"
RELEASE_SUFFIX = ".safetensors"
# The weights a release keeps, by stage: what generation and evaluation run. Stage 1 keeps its word
# detector (evaluation's word accuracy reads it; 0.2 M parameters); stage 2 leaves out its
# discriminator (training only: about half of its weights), which loading leaves at its initialisation.
RELEASE_WEIGHTS = {
    "LandmarkModule": ("generator.", "word_detector."),
    "FaceGenModule": ("generator.",),
    "SyncExpertModule": ("expert.",),
}
DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass(frozen=True)
class Release:
    stage: str  # class name, e.g. "LandmarkModule"
    init_args: dict
    facts: dict  # data facts, as in a checkpoint's `talkface_data`
    weights: dict[str, torch.Tensor]  # float32 (cast back from float16 if it was stored so)
    dtype: str  # as stored: float32 | float16
    source: dict


def release_weights(stage: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The part of a full state dict that a release of this stage keeps."""
    prefixes = RELEASE_WEIGHTS[stage]
    return {key: value for key, value in state_dict.items() if key.startswith(prefixes)}


def looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with the length of its JSON header (8 bytes, little-endian), then '{'."""
    try:
        with open(path, "rb") as file:
            head = file.read(9)
        size = path.stat().st_size
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= size - 8


def write_release(
    out: Path,
    stage: str,
    init_args: dict,
    facts: dict,
    weights: dict[str, torch.Tensor],
    fp16: bool = False,
    source: dict | None = None,
) -> Path:
    """Write a release atomically (a temporary file beside `out`, then os.replace)."""
    from safetensors.torch import save

    out = Path(out)
    dtype = "float16" if fp16 else "float32"
    tensors = {}
    for key, value in weights.items():
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.to(DTYPES[dtype])
            if fp16 and not torch.isfinite(value).all():
                raise TalkfaceError(f"{key}: its weights do not fit in float16; export without --fp16")
        tensors[key] = value.contiguous().clone()  # clone: safetensors refuses tensors that share memory
    metadata = {
        "format": RELEASE_FORMAT,
        "stage": stage,
        "init_args": _json(init_args, "init_args"),
        "talkface_data": _json(facts, "talkface_data"),
        "dtype": dtype,
        "source": _json(source or {}, "source"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        data = save(tensors, metadata=metadata)  # bytes: written by open() below, so the umask applies
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return out


def read_release(path: Path, label: str) -> Release:
    """A release's metadata and float32 weights; `label` starts every error line (e.g. '--landmark-ckpt FILE')."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            weights = {key: file.get_tensor(key) for key in file.keys()}
    except (SafetensorError, OSError) as error:
        raise TalkfaceError(f"{label}: not a readable safetensors file ({_first_line(error)})") from None
    if "format" not in metadata or "stage" not in metadata:
        raise TalkfaceError(
            f"{label}: a safetensors file but not a talkface model (no talkface metadata); "
            "make one with `talkface export CKPT --out MODEL.safetensors`"
        )
    if metadata["format"] != RELEASE_FORMAT:
        raise TalkfaceError(
            f"{label}: written in release format {metadata['format']!r}; this talkface reads {RELEASE_FORMAT!r}"
        )
    dtype = metadata.get("dtype", "float32")
    if dtype not in DTYPES:
        raise TalkfaceError(f"{label}: unknown weight type {dtype!r} in its metadata")
    try:
        init_args = json.loads(metadata.get("init_args", "{}"))
        facts = json.loads(metadata.get("talkface_data", "{}"))
        source = json.loads(metadata.get("source", "{}"))
    except json.JSONDecodeError as error:
        raise TalkfaceError(f"{label}: its talkface metadata is damaged ({error})") from None
    if not isinstance(init_args, dict) or not isinstance(facts, dict):
        raise TalkfaceError(f"{label}: its talkface metadata is damaged (init_args / talkface_data are not objects)")
    weights = {key: value.float() if value.is_floating_point() else value for key, value in weights.items()}
    return Release(metadata["stage"], init_args, facts, weights, dtype, source if isinstance(source, dict) else {})


def export_model(source: str | Path, out: str | Path, fp16: bool = False) -> tuple[Path, str, int]:
    """Export a trained stage (a .ckpt, or a release to re-export, e.g. as float16) to `out`.

    The model is rebuilt and its weights loaded strictly first, so what is written is known to load.
    Returns (the file, the stage's class name, the number of tensors)."""
    # Imported here: checkpoints.py reads releases with this module.
    from talkface.generation.checkpoints import inference_init_args, load_model

    out = _check_out(out)
    loaded = load_model(source, option="")
    stage = type(loaded.model).__name__
    weights = release_weights(stage, loaded.model.state_dict())
    write_release(out, stage, inference_init_args(loaded.model), loaded.facts, weights, fp16=fp16, source=loaded.source)
    return out, stage, len(weights)


def export_ensemble(sources: list[str | Path], out: str | Path, fp16: bool = False) -> tuple[Path, str, int]:
    """Combine separately trained stage-1 runs of one recipe (e.g. seeds) into one release whose
    prediction is their mean (talkface/networks/landmark_ensemble.py). Each member keeps its own
    weights and mouth rest; the word detector is the first run's. The runs must agree on every
    model argument and on the data facts. Returns (the file, the stage's class name, tensors)."""
    from lightning_modules import LandmarkModule
    from talkface.generation.checkpoints import _load_weights, inference_init_args, load_model

    out = _check_out(out)
    loaded = [load_model(source, option="") for source in sources]
    first = loaded[0]
    for source, model in zip(sources, loaded, strict=True):
        if type(model.model) is not LandmarkModule:
            raise TalkfaceError(f"{source}: only stage-1 (LandmarkModule) runs combine into an ensemble")
        if model.model.hparams.members != 1:
            raise TalkfaceError(f"{source}: already an ensemble of {model.model.hparams.members}; combine single runs")
    init_args = inference_init_args(first.model)
    for source, model in zip(sources[1:], loaded[1:], strict=True):
        other = inference_init_args(model.model)
        differ = sorted(key for key in init_args.keys() | other.keys() if init_args.get(key) != other.get(key))
        if differ:
            raise TalkfaceError(f"{source} and {sources[0]} differ in {', '.join(differ)}: combine runs of one recipe")
        if model.facts != first.facts:
            raise TalkfaceError(
                f"{source} and {sources[0]} were trained on data with other facts (features, vocabulary)"
            )
    init_args["members"] = len(loaded)
    weights = {
        f"generator.members.{index}.{key}": value
        for index, model in enumerate(loaded)
        for key, value in model.model.generator.state_dict().items()
    }
    weights |= {f"word_detector.{key}": value for key, value in first.model.word_detector.state_dict().items()}
    # What loading will build, loaded as loading does: what is written is known to load.
    _load_weights(LandmarkModule(**init_args), weights, RELEASE_WEIGHTS["LandmarkModule"], f"--out {out}")
    source = {"members": [model.source for model in loaded]}
    write_release(out, "LandmarkModule", init_args, first.facts, weights, fp16=fp16, source=source)
    return out, "LandmarkModule", len(weights)


def _check_out(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() != RELEASE_SUFFIX:
        raise TalkfaceError(
            f"--out {out}: a release is a {RELEASE_SUFFIX} file; give a name ending in {RELEASE_SUFFIX}"
        )
    if out.is_dir():
        raise TalkfaceError(f"--out {out} is a folder; give a file name ending in {RELEASE_SUFFIX}")
    return out


def _json(value, what: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as error:
        raise TalkfaceError(f"cannot store {what} as plain data ({error})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else type(error).__name__
