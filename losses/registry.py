"""The loss registry: `@register_loss("name")` on a LossTerm, then name it in YAML.

A term is built from a name (`temporal_residual`), a dotted class path
(`my_project.losses.LipWidth`, for terms outside talkface, no registration needed), or a
`{class_path, init_args}` dict as Lightning configs write it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from losses.base import LossTerm
from talkface.errors import TalkfaceError

LOSS_REGISTRY: dict[str, type[LossTerm]] = {}


def register_loss(name: str):
    """Class decorator adding a LossTerm subclass to the registry under `name`."""

    def decorator(cls: type[LossTerm]) -> type[LossTerm]:
        if not (isinstance(cls, type) and issubclass(cls, LossTerm)):
            raise TypeError(f"@register_loss({name!r}) must decorate a LossTerm subclass, got {cls!r}")
        if name in LOSS_REGISTRY and LOSS_REGISTRY[name] is not cls:
            existing = LOSS_REGISTRY[name]
            raise ValueError(
                f"loss term {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        cls.name = name
        LOSS_REGISTRY[name] = cls
        return cls

    return decorator


def registered_names() -> list[str]:
    import losses  # noqa: F401  (importing the package registers the built-in terms)

    return sorted(LOSS_REGISTRY)


def resolve_loss_class(class_path: str) -> type[LossTerm]:
    """A registered name or a dotted `module.Class` path → the LossTerm class.

    A module that does not exist is an unknown name (the error lists the registered ones); a
    module that exists but fails to import reports why, chained to its error.
    """
    registered_names()
    if class_path in LOSS_REGISTRY:
        return LOSS_REGISTRY[class_path]
    module_name, _, class_name = class_path.rpartition(".")
    unknown = (
        f"unknown loss term {class_path!r}; registered: {', '.join(registered_names())} (or give module.ClassName)"
    )
    if not module_name:
        raise TalkfaceError(unknown)
    module = _import_module(module_name, class_path)
    if module is None:
        raise TalkfaceError(unknown)
    cls = getattr(module, class_name, None)
    if cls is None:
        raise TalkfaceError(f"unknown loss term {class_path!r}: module {module_name} has no {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, LossTerm)):
        raise TalkfaceError(f"{class_path} is not a LossTerm subclass")
    return cls


def build_loss(spec: Any, name: str | None = None) -> LossTerm:
    """A LossTerm from an instance, a name / class path, or a {class_path, init_args} dict.

    `name` is the term's key in the config's `losses` dict, used in error messages.
    """
    if isinstance(spec, LossTerm):
        return spec
    if isinstance(spec, str):
        spec = {"class_path": spec}
    if callable(getattr(spec, "as_dict", None)):
        # The CLI (jsonargparse) instantiates dotted class paths itself and leaves a Namespace
        # where that failed: build it again here, so the failure is reported with its cause.
        spec = spec.as_dict()
    label = f"loss term {name!r}" if name else "a loss term"
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise TalkfaceError(f"{label} needs a class_path (a registered name or module.Class), got {spec!r}")
    class_path = str(spec["class_path"])
    label = f"loss term {name!r} ({class_path})" if name else f"loss term {class_path!r}"
    unknown = set(spec) - {"class_path", "init_args"}
    if unknown:
        raise TalkfaceError(f"{label}: unexpected key(s) {', '.join(sorted(unknown))}; use class_path and init_args")
    cls = resolve_loss_class(class_path)
    init_args = dict(spec.get("init_args") or {})
    try:
        inspect.signature(cls).bind(**init_args)
    except TypeError as error:
        raise TalkfaceError(f"{label}: bad init_args {init_args} ({error})") from error
    try:
        return cls(**init_args)
    except TalkfaceError:
        raise  # already a message for the user (e.g. missing weights)
    except Exception as error:
        raise TalkfaceError(f"{label}: {type(error).__name__} in __init__: {_first_line(error)}") from error


def term_label(name: str, term: LossTerm) -> str:
    """How errors name a configured term: its config key and its class."""
    cls = type(term)
    return f"loss term {name!r} ({cls.__module__}.{cls.__qualname__})"


def _import_module(module_name: str, class_path: str):
    """The module, or None when no such module exists; an error saying why when it exists but
    does not import (a missing dependency, a syntax error, an exception at import time)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            return None  # the module itself (or a package above it) is not there
        raise TalkfaceError(f"loss term {class_path!r}: importing {module_name} failed: {_describe(error)}") from error
    except Exception as error:
        raise TalkfaceError(f"loss term {class_path!r}: importing {module_name} failed: {_describe(error)}") from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else repr(error)
