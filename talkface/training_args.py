"""Rewrite `talkface fit|validate|test|predict` arguments before the Lightning CLI parses them.

Three things jsonargparse cannot do alone:
- `-c landmark/sample` names a packaged recipe, and a recipe's `defaults:` are merged in;
- every configured loss term is written out with all its arguments (defaults filled in,
  unknown keys refused), so `--print_config` shows the whole objective;
- `--model.init_args.losses.NAME.init_args.KEY VALUE` changes that one key: jsonargparse treats
  the losses dict as one opaque value and would replace the whole `NAME` entry.

Configs are handed on as YAML text (jsonargparse's `--config` takes a path or a YAML string).
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

import yaml

from talkface.errors import TalkfaceError
from talkface.recipes import load_composed

CONFIG_OPTIONS = ("-c", "--config")
LOSSES_OPTION = "--model.init_args.losses"


def rewrite_arguments(argv: list[str]) -> list[str]:
    """The same command with each config composed, and loss overrides merged into the losses
    dict in effect at their place on the command line (the last config or value that set it)."""
    out: list[str] = []
    configs: dict[int, dict] = {}  # index in `out` of a config value -> the parsed config
    losses_values: dict[int, dict] = {}  # index in `out` of a --model.init_args.losses value -> the dict
    losses: dict | None = None  # the losses dict in effect so far (inside one of the above)
    index = 0
    while index < len(argv):
        option, value, index = _next_option(argv, index)
        if value is None:
            out.append(option)
            continue
        out += [option, value]
        if option in CONFIG_OPTIONS:
            configs[len(out) - 1] = config = load_composed(value)
            if (configured := _losses_of(config)) is not None:
                losses = configured
        elif option == LOSSES_OPTION:
            value = _parse_value(value, option)
            if not isinstance(value, dict):
                raise TalkfaceError(f"{LOSSES_OPTION}: expected a mapping of loss terms, got {out[-1]!r}")
            losses_values[len(out) - 1] = losses = value
        elif option.startswith(LOSSES_OPTION + "."):
            if losses is None:
                raise TalkfaceError(
                    f"{option}: no losses are configured before it; give a recipe (-c) with `losses` first"
                )
            _set_loss_key(losses, option.removeprefix(LOSSES_OPTION + "."), _parse_value(value, option), option)
            del out[-2:]
    for position, config in configs.items():
        if _losses_of(config) is not None:
            config["model"]["init_args"]["losses"] = expand_losses(_losses_of(config))
        out[position] = yaml.safe_dump(config, sort_keys=False)
    for position, value in losses_values.items():
        out[position] = yaml.safe_dump(expand_losses(value), sort_keys=False)
    return out


def _next_option(argv: list[str], index: int) -> tuple[str, str | None, int]:
    """(option, its value or None, next index) for `--opt value`, `--opt=value` or a lone word."""
    word = argv[index]
    if word.startswith("-") and "=" in word:
        option, _, value = word.partition("=")
        return option, value, index + 1
    takes_value = word in CONFIG_OPTIONS or word.startswith(LOSSES_OPTION)
    if takes_value and index + 1 < len(argv):
        return word, argv[index + 1], index + 2
    return word, None, index + 1


def _losses_of(config: dict) -> dict | None:
    losses = ((config.get("model") or {}).get("init_args") or {}).get("losses")
    return losses if isinstance(losses, dict) else None


def _parse_value(text: str, option: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TalkfaceError(f"{option}: not a valid value ({str(error).splitlines()[0]})") from None


def _set_loss_key(losses: dict, dotted: str, value: Any, option: str) -> None:
    """`NAME.init_args.KEY` or `NAME.class_path` (a new term when NAME is new)."""
    name, _, rest = dotted.partition(".")
    if not rest:
        losses[name] = value
        return
    if name not in losses and rest != "class_path":
        raise TalkfaceError(
            f"{option}: no loss term {name!r} is configured (terms: {', '.join(losses) or 'none'}); add it with {LOSSES_OPTION}.{name}.class_path CLASS"
        )
    entry = losses.setdefault(name, {})
    if isinstance(entry, str):
        entry = losses[name] = {"class_path": entry}
    if rest == "class_path":
        entry["class_path"] = value
    elif rest.startswith("init_args."):
        entry.setdefault("init_args", {})
        if entry["init_args"] is None:
            entry["init_args"] = {}
        entry["init_args"][rest.removeprefix("init_args.")] = value
    else:
        raise TalkfaceError(f"{option}: a loss term has only class_path and init_args.KEY")


def expand_losses(losses: dict[str, Any]) -> dict[str, dict]:
    """{name: {class_path, init_args}} with each term's arguments complete and checked."""
    from losses.registry import resolve_loss_class

    expanded = {}
    for name, spec in losses.items():
        if isinstance(spec, str):
            spec = {"class_path": spec}
        if not isinstance(spec, dict) or "class_path" not in spec:
            raise TalkfaceError(
                f"loss term {name!r}: needs a class_path (a registered name or module.Class), got {spec!r}"
            )
        unknown = set(spec) - {"class_path", "init_args"}
        if unknown:
            raise TalkfaceError(
                f"loss term {name!r}: unexpected key(s) {', '.join(sorted(unknown))}; use class_path and init_args"
            )
        cls = resolve_loss_class(str(spec["class_path"]))
        given = dict(spec.get("init_args") or {})
        parameters = {
            key: p
            for key, p in inspect.signature(cls.__init__).parameters.items()
            if key != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
        unknown = sorted(set(given) - set(parameters))
        if unknown and not takes_any:
            raise TalkfaceError(
                f"loss term {name!r} ({spec['class_path']}): unknown argument(s) {', '.join(unknown)}; it takes {', '.join(parameters)}"
            )
        hints = typing.get_type_hints(cls.__init__)
        for key, value in given.items():
            _check_type(f"loss term {name!r} ({spec['class_path']}): {key}", value, hints.get(key))
        init_args = {key: p.default for key, p in parameters.items() if p.default is not inspect.Parameter.empty}
        init_args.update(given)
        expanded[name] = {"class_path": spec["class_path"], "init_args": init_args}
    return expanded


def _check_type(what: str, value: Any, hint: Any) -> None:
    """Plain annotated types (float, int, bool, str, optionally None) checked before anything is
    built: `weight: heavy` is one line naming the term, not a failure inside its constructor."""
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return
    plain = [t for t in allowed if t in (float, int, bool, str)]
    if not plain or len(plain) != len([t for t in allowed if t is not type(None)]):
        return  # a richer type: the term checks it itself
    fits = any(
        isinstance(value, bool)
        if t is bool
        else isinstance(value, str)
        if t is str
        else isinstance(value, (int, float)) and not isinstance(value, bool) and (t is float or isinstance(value, int))
        for t in plain
    )
    if not fits:
        names = " or ".join(
            "a number" if t is float else "a whole number" if t is int else "true/false" if t is bool else "text"
            for t in plain
        )
        raise TalkfaceError(f"{what} must be {names}, got {value!r}")
