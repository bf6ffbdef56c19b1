"""Recipes: the YAML configs that ship inside the package, found by name or by path.

`configs/` is installed as the package `configs`, so `talkface fit -c landmark/sample` works
from any folder after a plain `pip install .`, and a file path still works as before.

A recipe may start with `defaults: [callbacks/default, data/sample, ...]`: each named piece is
merged in order (dicts deeply, lists replaced) and the recipe's own keys go on top, so blocks
that several recipes share (callbacks, data settings, loss sets) are written once.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from talkface.errors import TalkfaceError

DEFAULTS_KEY = "defaults"


def packaged_root() -> Path:
    """The installed `configs` folder (a real folder: talkface is never installed zipped)."""
    return Path(str(resources.files("configs")))


def packaged_recipes() -> list[str]:
    """Names of the recipes a user trains with (the pieces they compose are left out)."""
    root = packaged_root()
    return sorted(
        str(p.relative_to(root).with_suffix(""))
        for p in root.glob("*/*.yaml")
        if p.parent.name in ("landmark", "generator", "sync")
    )


def find_recipe(name: str | Path) -> Path:
    """A config file path as given, else a packaged recipe: `landmark/sample`,
    `landmark/sample.yaml` or `configs/landmark/sample.yaml` all name the same one."""
    path = Path(name)
    if path.is_file():
        return path
    relative = Path(*path.parts[1:]) if path.parts[:1] == ("configs",) else path
    root = packaged_root()
    for candidate in (root / relative, root / relative.with_name(relative.name + ".yaml")):
        if candidate.is_file():
            return candidate
    raise TalkfaceError(f"{name}: no such config file or packaged recipe (packaged: {', '.join(packaged_recipes())})")


def load_composed(name: str | Path) -> dict[str, Any]:
    """The recipe as one plain dict, its `defaults` merged in (interpolations kept as written)."""
    return _readable_order(OmegaConf.to_container(_compose(find_recipe(name), ()), resolve=False))


def _readable_order(config: Any, top: bool = True) -> Any:
    """Keys in the order a reader expects (merging puts the pieces' keys first)."""
    if not isinstance(config, dict):
        return [_readable_order(item, False) for item in config] if isinstance(config, list) else config
    first = ("seed_everything", "trainer", "model", "data") if top else ("class_path", "init_args")
    keys = [k for k in first if k in config] + [k for k in config if k not in first]
    return {key: _readable_order(config[key], False) for key in keys}


def _compose(path: Path, chain: tuple[Path, ...]) -> DictConfig:
    if path.resolve() in chain:
        raise TalkfaceError(f"{path}: `defaults` include each other in a loop ({' -> '.join(p.name for p in chain)})")
    try:
        config = OmegaConf.load(path)
    except (OmegaConfBaseException, yaml.YAMLError, ValueError, OSError) as error:
        raise TalkfaceError(f"{path}: not a readable YAML config ({str(error).splitlines()[0]})") from error
    if not isinstance(config, DictConfig):
        raise TalkfaceError(f"{path}: a config must be a mapping of keys, got a {type(config).__name__}")
    defaults = config.pop(DEFAULTS_KEY, None)
    if defaults is None:
        return config
    if isinstance(defaults, str) or not all(isinstance(d, str) for d in defaults):
        raise TalkfaceError(f"{path}: `defaults` must be a list of recipe names, e.g. [callbacks/default, data/sample]")
    pieces = [_compose(_find_piece(piece, path), (*chain, path.resolve())) for piece in defaults]
    return OmegaConf.merge(*pieces, config)


def _find_piece(name: str, including: Path) -> Path:
    """A `defaults` entry: a packaged piece, or a file relative to the recipe that names it."""
    beside = including.parent / name
    for candidate in (beside, beside.with_name(beside.name + ".yaml")):
        if candidate.is_file():
            return candidate
    try:
        return find_recipe(name)
    except TalkfaceError:
        raise TalkfaceError(
            f"{including}: `defaults` names {name!r}, which is neither beside it nor a packaged config"
        ) from None
