"""Atomic writes: the one way claus puts state on disk.

Every file claus writes (label states, selections, metrics snapshots, frame-store arrays,
checkpoints) goes through `atomic_write`: the bytes land in a temporary file in the same
folder, are flushed and fsynced, and only then renamed over the target with `os.replace`,
which is atomic on POSIX and Windows. A crash or kill at any moment leaves either the old file
or the new one, never a torn mix. The folder is fsynced too (where the OS allows) so the rename
itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "TMP_SUFFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npy",
    "atomic_torch_save",
    "read_json",
    "remove_stray_temporaries",
    "sha256_file",
]


def _fsync_dir(folder: Path) -> None:
    # Not every platform lets a directory be opened (Windows); the rename is still atomic there.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on a clean exit it replaces `path` atomically.

    Use as `with atomic_write(p, "w") as f: f.write(...)`. If the body raises, the temporary
    file is removed and `path` is left untouched. Parent folders are created.

    Args:
        path: the final file.
        mode: "wb" (default) or "w" (UTF-8 text).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode any other tool would (0666 & ~umask),
        # so run folders and exports can be shared with annotation tools and other accounts.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    # Linux reports the umask without changing it; elsewhere it can only be read by setting
    # it, which another thread could observe for a moment.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Suffix of atomic_write's temporary files (`.<name>.<random>.tmp` beside the target).
TMP_SUFFIX = ".tmp"


def remove_stray_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writes interrupted by a kill left under `folder`
    (`.<name>.<random>.tmp`, at any depth); returns what was removed. Call it only while no
    other process writes there (when a run starts or resumes)."""
    out = []
    for p in Path(folder).rglob(f".*{TMP_SUFFIX}"):
        if p.is_file():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                out.append(p)
    return out


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """The JSON document of a file claus wrote; a damaged one (not UTF-8, not JSON, cut short)
    is a ValueError naming the file, the place and what to do, never a bare decode error."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); this {what} is damaged, "
                         "restore it or start again") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}); this {what} is damaged, restore it or start "
                         "again") from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
    """Write `obj` as JSON (UTF-8, keys in insertion order, trailing newline) atomically.

    NaN/inf are refused (`allow_nan=False`): they are not JSON and other tools choke on them.
    """
    text = json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=False)
    atomic_write_text(path, text + "\n")


def atomic_save_npy(path: str | os.PathLike, array: Any) -> None:
    """Save a NumPy array as `.npy` atomically (readable with `np.load(mmap_mode="r")`)."""
    import numpy as np

    with atomic_write(path, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def atomic_torch_save(
    path: str | os.PathLike, obj: Any, save: Callable[[Any, IO[bytes]], None] | None = None
) -> None:
    """`torch.save(obj)` to `path` atomically: an interrupted save never leaves a torn checkpoint.

    Args:
        path: the checkpoint file (`.pt`).
        obj: anything `torch.save` accepts; keep it to tensors and plain containers so it loads
            with `torch.load(weights_only=True)`.
        save: override of the serializer (tests); defaults to `torch.save`.
    """
    if save is None:
        import torch

        save = torch.save
    with atomic_write(path, "wb") as f:
        save(obj, f)
