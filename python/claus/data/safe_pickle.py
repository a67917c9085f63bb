"""Load annotation pickles from the internet without running their code.

`pickle.load` executes whatever callables a file names (`os.system`, `eval`, ...). The
annotation pickles claus reads (UCF-101-24 `pyannot.pkl`, ACT/MOC `*-GT.pkl`) need only plain
containers, numbers, strings and NumPy arrays/scalars, so `safe_load` resolves exactly those
globals and refuses every other one with `UnsafePickleError` before anything runs.
"""

from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["UnsafePickleError", "safe_load", "safe_loads"]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (possibly malicious); nothing ran."""


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray as ma  # NumPy >= 2
        from numpy._core import numeric
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import multiarray as ma  # type: ignore[no-redef]
        from numpy.core import numeric  # type: ignore[no-redef]
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    # Pickles name these under numpy.core (NumPy 1) or numpy._core (NumPy 2); both map to the
    # installed module so old files load on new NumPy without importing the deprecated alias.
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = ma._reconstruct
        allowed[(mod, "scalar")] = ma.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = numeric._frombuffer
    # Dtype classes appear in pickles written by NumPy >= 1.25 (e.g. numpy.dtypes.Float32DType).
    import numpy.dtypes as npd

    for n in dir(npd):
        if n.endswith("DType"):
            allowed[("numpy.dtypes", n)] = getattr(npd, n)
    return allowed


_BUILTINS = {
    name: getattr(__import__("builtins"), name)
    for name in (
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "bytearray",
        "bool",
        "slice",
        "range",
    )
}
_ALLOWED: dict[tuple[str, str], Any] | None = None


def _allowed() -> dict[tuple[str, str], Any]:
    global _ALLOWED
    if _ALLOWED is None:
        a = _numpy_globals()
        for n, obj in _BUILTINS.items():
            a[("builtins", n)] = obj
            a[("__builtin__", n)] = obj  # Python 2 pickles
        # Python-3 pickles at protocol <= 2 spell bytes as _codecs.encode(str, "latin1").
        a[("_codecs", "encode")] = codecs.encode
        a[("collections", "OrderedDict")] = collections.OrderedDict
        _ALLOWED = a
    return _ALLOWED


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, where: str):
        super().__init__(f, encoding="latin1")  # Python 2 pickles hold NumPy data as str
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        obj = _allowed().get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"{self._where}: refusing to load: the pickle asks for {module}.{name}, which an "
                "annotation file never needs (only NumPy arrays/scalars and builtin containers "
                "are allowed). The file may be malicious; nothing from it was executed."
            )
        return obj


def safe_loads(data: bytes, where: str = "<bytes>") -> Any:
    """Unpickle `data` allowing only NumPy arrays/scalars and builtin containers."""
    if not data:
        raise pickle.UnpicklingError(f"{where}: empty file")
    try:
        return _RestrictedUnpickler(io.BytesIO(data), where).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as e:
        raise pickle.UnpicklingError(
            f"{where}: not a readable pickle ({type(e).__name__}: {e})"
        ) from e


def safe_load(path: str | os.PathLike) -> Any:
    """Unpickle the file at `path` with the restricted unpickler (see `safe_loads`)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"annotation file {p} does not exist")
    return safe_loads(p.read_bytes(), str(p))
