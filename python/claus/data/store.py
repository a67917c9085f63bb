"""The frame store: every video's frames resized once into a memory-mapped uint8 array.

Training reads clips from it without decoding images. Layout of a store folder::

    index.json            {"format": "claus.framestore", "version": 1, "dataset": ...,
                           "size": [h, w] | {"short_side": s} | null,
                           "videos": {name: {"file", "num_frames", "height", "width"}},
                           "failed": {name: reason}}
    frames/<name>.npy     (T, h, w, 3) uint8, one per video (name URL-quoted)

Writing is atomic per video (the `.npy` appears complete or not at all) and the index is
rewritten atomically every few videos, so an interrupted `prepare` resumes where it stopped:
videos whose array is present with the right shape are not redone. A video that cannot be
read is skipped with a warning naming it, recorded in index.json's "failed" (a dataset opened
on the store then says the video was skipped while preparing it, and why) and counted in the
summary; the job goes on unless more than `max_bad_share` of the videos failed
(`claus.data.faults`).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import atomic_save_npy, atomic_write_json
from .dataset import VideoDataset
from .faults import BadVideos, TooManyBadVideos, one_line

log = logging.getLogger(__name__)

__all__ = ["FrameStore", "PrepareSummary", "prepare_store", "resized_size"]

FORMAT = "claus.framestore"
VERSION = 1


def resized_size(height: int, width: int, size) -> tuple[int, int]:
    """Target (h, w): size None = unchanged, int = short side (aspect kept), (h, w) = exact."""
    if size is None:
        return height, width
    if isinstance(size, int):
        s = size / min(height, width)
        return max(1, int(round(height * s))), max(1, int(round(width * s)))
    h, w = size
    return int(h), int(w)


def _resize(frames: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if frames.shape[1:3] == tuple(hw):
        return frames
    h, w = hw
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BILINEAR)) for f in frames])


class FrameStore:
    """A prepared frame store folder (read side)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        p = self.root / "index.json"
        if not p.is_file():
            raise FileNotFoundError(
                f"{self.root} is not a frame store (no index.json); build one with "
                "`python -m claus.data.prepare`"
            )
        try:
            idx = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not JSON ({e})") from e
        if idx.get("format") != FORMAT or idx.get("version") != VERSION:
            raise ValueError(
                f"{p}: not a claus frame store v{VERSION} (format={idx.get('format')!r}, "
                f"version={idx.get('version')!r})"
            )
        self.index = idx

    @property
    def videos(self) -> dict[str, dict]:
        return self.index["videos"]

    @property
    def failed(self) -> dict[str, str]:
        return self.index.get("failed", {})

    def has(self, name: str) -> bool:
        return name in self.videos

    def file(self, name: str) -> Path:
        return self.root / self.videos[name]["file"]

    def missing(self, ds: VideoDataset) -> list[str]:
        """Videos of `ds` the store lacks (failed or not yet prepared)."""
        return [v.name for v in ds.videos if v.name not in self.videos]


@dataclass
class PrepareSummary:
    """What `prepare_store` did: counts and the names of failed videos with reasons."""

    written: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        s = (
            f"{self.written} videos written, {self.reused} already present, "
            f"{len(self.failed)} failed"
        )
        if self.failed:
            s += ": " + ", ".join(f"{k} ({v})" for k, v in list(self.failed.items())[:10])
            if len(self.failed) > 10:
                s += f", ... ({len(self.failed) - 10} more in index.json)"
        return s


def _valid_array(path: Path, shape: tuple[int, ...]) -> bool:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return a.dtype == np.uint8 and a.shape == shape


def _note_failure(bad: BadVideos, name: str, reason: str, file: str | None, ipath: Path,
                  index: dict, *, warn: bool) -> None:
    """Record a failed video; past the share, save the index (a rerun resumes) and raise."""
    try:
        bad.add(name, "prepare", reason, file, warn=warn)
    except TooManyBadVideos:
        atomic_write_json(ipath, index, indent=None)
        raise


def prepare_store(
    ds: VideoDataset,
    root: str | os.PathLike,
    size=None,
    *,
    chunk: int = 64,
    save_every: int = 20,
    progress: bool = True,
    retry_failed: bool = False,
    max_bad_share: float | None = None,
) -> PrepareSummary:
    """Write (or resume writing) the frame store of `ds` at `root`.

    Args:
        ds: the dataset (its frame sources are read).
        root: the store folder (created).
        size: None (original size), int (short side, aspect kept) or (h, w).
        chunk: frames decoded per read.
        save_every: rewrite index.json after this many videos (resume granularity).
        progress: show a tqdm bar.
        retry_failed: retry videos an earlier run recorded as failed (default: skip them again).
        max_bad_share: stop (after saving the index) once more than this share of the
            dataset's videos failed, now or in an earlier run; None: never stop.

    Returns:
        A `PrepareSummary`. Failures are also logged as warnings naming the video.

    Raises:
        TooManyBadVideos: more than `max_bad_share` of the videos failed (one line, naming the
            store and the first failure).
    """
    from tqdm.auto import tqdm

    from .frames import FrameReadError

    root = Path(root)
    ipath = root / "index.json"
    size_field = (
        {"short_side": size}
        if isinstance(size, int)
        else (list(size) if size is not None else None)
    )
    if ipath.is_file():
        old = FrameStore(root).index
        if old.get("dataset") != ds.name or old.get("size") != size_field:
            raise ValueError(
                f"{root} holds a store of {old.get('dataset')!r} at size {old.get('size')}; "
                f"refusing to mix in {ds.name!r} at size {size_field} (use another folder)"
            )
        index = old
    else:
        index = {
            "format": FORMAT,
            "version": VERSION,
            "dataset": ds.name,
            "size": size_field,
            "videos": {},
            "failed": {},
        }
    summary = PrepareSummary()
    bad = BadVideos(str(root), len(ds), max_bad_share)
    since_save = 0
    bar = tqdm(ds.videos, desc=f"prepare {ds.name}", unit="video", disable=not progress)
    for v in bar:
        h, w = resized_size(v.height, v.width, size)
        rel = f"frames/{urllib.parse.quote(v.name, safe='')}.npy"
        shape = (v.num_frames, h, w, 3)
        if v.name in index["videos"] and _valid_array(root / rel, shape):
            summary.reused += 1
            continue
        if v.name in index["failed"] and not retry_failed:
            summary.failed[v.name] = index["failed"][v.name]
            # Warned about when it failed; it still counts against the share.
            _note_failure(bad, v.name, summary.failed[v.name], None, ipath, index, warn=False)
            continue
        try:
            parts = []
            for s in range(0, v.num_frames, chunk):
                fr = ds.read_frames(ds.index(v.name), np.arange(s, min(s + chunk, v.num_frames)))
                if fr.ndim != 4 or fr.shape[3] != 3:
                    raise FrameReadError(f"frames of shape {fr.shape}, expected (n, H, W, 3)")
                parts.append(_resize(fr, (h, w)))
            arr = np.concatenate(parts)
            atomic_save_npy(root / rel, arr)
        except (FrameReadError, OSError, ValueError, IndexError, ImportError) as e:
            reason = one_line(f"{type(e).__name__}: {e}")
            summary.failed[v.name] = reason
            index["failed"][v.name] = reason
            index["videos"].pop(v.name, None)
            # Name the first few; a dataset with no frames at all would otherwise flood the log.
            _note_failure(bad, v.name, reason, getattr(e, "path", None), ipath, index,
                          warn=len(summary.failed) <= 10)
            continue
        index["videos"][v.name] = {"file": rel, "num_frames": v.num_frames, "height": h, "width": w}
        index["failed"].pop(v.name, None)
        summary.written += 1
        since_save += 1
        if since_save >= save_every:
            atomic_write_json(ipath, index, indent=None)
            since_save = 0
    atomic_write_json(ipath, index, indent=None)
    if summary.failed:
        log.warning("prepare %s: %s", ds.name, summary)
    return summary
