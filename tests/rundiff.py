"""Two run folders compared file by file, wall times aside (the resume and DDP tests).

JSON and JSONL files are compared as data without their timing keys, `.pt` files as trees of
tensors bit for bit, a round's manifest.json by the files it names, every other file byte for
byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

#: Keys whose values are wall times: the only thing a resumed run may report differently.
TIMES = frozenset({"wall_s", "seconds"})


def untimed(x):
    """`x` (parsed JSON) without its timing keys, at any depth."""
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items() if k not in TIMES}
    if isinstance(x, list):
        return [untimed(v) for v in x]
    return x


def jsonl(path: Path) -> list:
    """A JSONL file's records, timing keys removed."""
    return [untimed(json.loads(x)) for x in path.read_text().splitlines() if x.strip()]


def _digest(t: torch.Tensor) -> str:
    h = hashlib.sha256(str((t.dtype, tuple(t.shape))).encode())
    h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def same_tree(a, b) -> bool:
    """Equal nested containers; tensors bit for bit (NaN included)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and _digest(a) == _digest(b)
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(same_tree(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(same_tree(x, y) for x, y in zip(a, b, strict=True)))
    return a == b


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def same_manifest(a: Path, b: Path) -> bool:
    """Two rounds' manifest.json (sha256 of the round's files): each true of its own folder,
    both naming the same files, and a sha256 differing only where the files differ by wall
    times (eval.json holds its `seconds`)."""
    ma, mb = (json.loads(p.read_text()) for p in (a, b))
    fa, fb = ma.pop("files"), mb.pop("files")
    if ma != mb or fa.keys() != fb.keys():
        return False
    for name in fa:
        pa, pb = a.parent / name, b.parent / name
        if not (pa.is_file() and pb.is_file() and _sha256(pa) == fa[name]
                and _sha256(pb) == fb[name] and same_file(pa, pb)):
            return False
    return True


def same_file(a: Path, b: Path) -> bool:
    if a.read_bytes() == b.read_bytes():
        return True
    if a.name == "manifest.json":
        return same_manifest(a, b)
    if a.suffix == ".json":
        return untimed(json.loads(a.read_text())) == untimed(json.loads(b.read_text()))
    if a.suffix == ".jsonl":
        return jsonl(a) == jsonl(b)
    if a.suffix == ".pt":
        return same_tree(torch.load(a, weights_only=True), torch.load(b, weights_only=True))
    return False


def files(root: Path) -> dict[str, Path]:
    """Every file under `root` by its path relative to `root`."""
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def tree_diff(a: Path, b: Path) -> list[str]:
    """What differs between two run folders: files only in one, files whose content differs.
    Empty when the folders hold the same files (wall times aside)."""
    fa, fb = files(a), files(b)
    out = [f"only in {a.name}: {k}" for k in fa.keys() - fb.keys()]
    out += [f"only in {b.name}: {k}" for k in fb.keys() - fa.keys()]
    out += [f"differs: {k}" for k in sorted(fa.keys() & fb.keys())
            if not same_file(fa[k], fb[k])]
    return sorted(out)
