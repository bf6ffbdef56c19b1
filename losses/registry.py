"""The loss registry: `@register_loss("name")` on a LossTerm, then name it in YAML.

A term is built from a name (`temporal_residual`), a dotted class path
(`my_project.losses.LipWidth`, for terms outside talkface, no registration needed), or a
`{class_path, init_args}` dict as Lightning configs write it.
"""

from __future__ import annotations

import importlib
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
    """A registered name or a dotted `module.Class` path → the LossTerm class."""
    registered_names()
    if class_path in LOSS_REGISTRY:
        return LOSS_REGISTRY[class_path]
    cls = _import_class(class_path)
    if cls is None:
        raise TalkfaceError(f"unknown loss term {class_path!r}; registered: {', '.join(registered_names())} (or give module.ClassName)")
    if not (isinstance(cls, type) and issubclass(cls, LossTerm)):
        raise TalkfaceError(f"{class_path} is not a LossTerm subclass")
    return cls


def build_loss(spec: Any) -> LossTerm:
    """A LossTerm from an instance, a name / class path, or a {class_path, init_args} dict."""
    if isinstance(spec, LossTerm):
        return spec
    if isinstance(spec, str):
        spec = {"class_path": spec}
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise TalkfaceError(f"a loss term needs a class_path (a registered name or module.Class), got {spec!r}")
    unknown = set(spec) - {"class_path", "init_args"}
    if unknown:
        raise TalkfaceError(f"loss term {spec['class_path']!r}: unexpected key(s) {', '.join(sorted(unknown))}; use class_path and init_args")
    cls = resolve_loss_class(str(spec["class_path"]))
    init_args = dict(spec.get("init_args") or {})
    try:
        return cls(**init_args)
    except TypeError as error:
        raise TalkfaceError(f"loss term {spec['class_path']!r}: bad init_args {init_args} ({error})") from None


def _import_class(class_path: str):
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, class_name, None)
