"""Typed configuration values: field metadata (`meta`), a flag or config-file value → its
field's type (`convert`), and a dataclass from such values (`build`).

The lowest layer of the configuration: `claus.data.registry` (DatasetSpec),
`claus.training.config` (TrainConfig) and `claus.config` (RunConfig, the field table) use it;
it imports nothing of claus, so none of them has to import another for the one conversion rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

__all__ = ["build", "convert", "meta"]


def meta(help: str, name: str | None = None, flags: tuple[str, ...] = (),
         choices: Callable[[], str] | None = None) -> dict:
    """Field metadata: its help, its flat name in flags and files (default: the attribute),
    extra flag spellings, and what lists its values for the help when the help is made (a
    registry that grows after import: the strategies)."""
    return {"help": help, "name": name, "flags": flags, "choices": choices}


def convert(kind: str, name: str, value: Any, source: str) -> Any:
    """Coerce a flag or config-file value to a field's type (`int | None`, `bool`, `list`, ...);
    errors name the source and field."""
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if "None" in kind:
            return None
        raise ValueError(f"{source}: field {name} cannot be empty")
    try:
        if kind.startswith("list"):
            items = value if isinstance(value, (list, tuple)) else str(value).replace(
                ",", " ").split()
            return [str(v) for v in items]
        if kind.startswith("bool"):
            if isinstance(value, str):
                low = value.lower()
                if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return low in ("true", "1", "yes", "on")
            if not isinstance(value, (bool, int)):
                raise ValueError(value)
            return bool(value)
        if kind.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if kind.startswith("float"):
            if isinstance(value, bool):
                raise ValueError(value)
            out = float(value)
            if not math.isfinite(out):
                raise ValueError(value)
            return out
        if isinstance(value, (dict, list)):
            raise ValueError(value)
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: field {name} expects {kind}, got {value!r}") from None


def build(cls: type, values: Mapping[str, Any], source: str, convert_nested: bool = True):
    """`cls(**values)` with each value converted to its field's type; unknown names are an
    error naming the source and listing the fields."""
    known = {f.name: f for f in fields(cls)}
    flat = {(f.metadata or {}).get("name") or f.name: f.name for f in fields(cls)}
    kw = {}
    for key, value in values.items():
        attr = flat.get(key, key)
        if attr not in known:
            raise ValueError(f"{source}: unknown field {key!r} of {cls.__name__}; fields: "
                             f"{', '.join(flat)}")
        if attr in ("data", "train") and not convert_nested:
            kw[attr] = value
        else:
            kw[attr] = convert(str(known[attr].type), key, value, source)
    return cls(**kw)
