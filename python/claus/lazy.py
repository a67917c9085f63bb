"""Package attributes loaded on first use (PEP 562), so a package's torch-free parts import
without torch: `claus.data`, `claus.eval`, `claus.selection` and `claus.training` use it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_getattr(package: str, namespace: MutableMapping[str, Any],
                 table: Mapping[str, str | tuple[str, str]]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports `table[name]` on first access.

    Args:
        package: the package's `__name__` (relative module names resolve against it).
        namespace: the package's `globals()`: a loaded value is stored there, so later lookups
            (and a test's replacement of it) no longer come through `__getattr__`.
        table: name -> module (the attribute of the same name) or (module, attribute).
    """

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        where = table[name]
        module, attr = (where, name) if isinstance(where, str) else where
        value = getattr(importlib.import_module(module, package), attr)
        namespace[name] = value
        return value

    return __getattr__
