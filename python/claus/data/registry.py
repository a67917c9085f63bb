"""Dataset names → readers: the one entry point commands use (`load_dataset`), and the
value that names a run's data (`DatasetSpec`, saved in every run folder)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..conversion import build, meta
from ..io import sha256_file
from .dataset import VideoDataset

__all__ = ["DATASETS", "TRAIN_DEFAULTS", "DatasetSpec", "data_fingerprint", "load_dataset",
           "train_defaults"]

DATASETS = {
    "synthetic": "the embedded procedural benchmark (presets tiny/demo/full; no download)",
    "ucf101-24": "UCF-101-24: a folder with pyannot_with_class_names.pkl / pyannot.pkl / "
    "UCF101v2-GT.pkl, testlist01.txt, rgb-images/",
    "jhmdb-21": "J-HMDB-21: a folder with JHMDB-GT.pkl, Frames/, puppet_mask/",
    "custom": "a claus dataset JSON file (see README, Data)",
    "videos": "a folder of videos nobody has labelled yet (train/ or the folder itself, "
    "classes.txt, an optional labelled test.json; claus.data.videos)",
}

#: Training settings a dataset family needs beyond `claus.training.TrainConfig`'s defaults; they
#: sit between those defaults and a config file or flag (which still override them). Synthetic
#: colours are random by construction, so shuffling RGB channels loses nothing there and keeps
#: a small detector from remembering videos by their look; on real footage (and pretrained
#: RGB backbones) it would hurt, so it is not a global default.
TRAIN_DEFAULTS: dict[str, dict] = {"synthetic": {"channel_shuffle": True}}


def train_defaults(name: str) -> dict:
    """The `TRAIN_DEFAULTS` of a dataset name ("synthetic:demo" → those of "synthetic")."""
    return dict(TRAIN_DEFAULTS.get(name.partition(":")[0], {}))


@dataclass(frozen=True)
class DatasetSpec:
    """Which data a run opens (`claus.data.load_dataset`).

    Attributes:
        name: a `claus.data.DATASETS` name; "synthetic:<preset>" is short for name="synthetic"
            with that preset.
        root: dataset folder (ucf101-24, jhmdb-21, videos) or JSON file (custom); made absolute
            so a run reopens it from any working folder. Not for synthetic.
        store: frame store folder (`python -m claus.data.prepare`), absolute.
        split: 1-based split number (J-HMDB-21: 1-3; others have one).
        preset: synthetic preset (tiny, demo, longtail, full); only for synthetic (default demo).
        seed: synthetic generator seed.
    """

    name: str = field(default="synthetic", metadata=meta(
        "dataset name: synthetic[:tiny|demo|longtail|full], ucf101-24, jhmdb-21, custom, videos",
        name="dataset"))
    root: str | None = field(default=None, metadata=meta(
        "dataset folder (ucf101-24, jhmdb-21, videos) or dataset JSON file (custom)"))
    store: str | None = field(default=None, metadata=meta(
        "frame store folder written by python -m claus.data.prepare"))
    split: int = field(default=1, metadata=meta("dataset split number (J-HMDB-21: 1-3)"))
    preset: str | None = field(default=None, metadata=meta(
        "synthetic preset: tiny, demo (default), full"))
    seed: int = field(default=0, metadata=meta("synthetic generator seed", name="data_seed"))

    def __post_init__(self) -> None:
        base, _, sub = self.name.partition(":")
        if base not in DATASETS:
            choices = "; ".join(f"{k}: {v}" for k, v in DATASETS.items())
            raise ValueError(f"--dataset: unknown dataset {self.name!r}; choices: {choices}")
        if sub:
            if self.preset not in (None, sub):
                raise ValueError(f"--dataset {self.name} and --preset {self.preset} disagree")
            object.__setattr__(self, "name", base)
            object.__setattr__(self, "preset", sub)
        if base == "synthetic":
            from .synthetic import PRESETS

            preset = self.preset or "demo"
            if preset not in PRESETS:
                raise ValueError(f"--preset: unknown synthetic preset {preset!r}; choices: "
                                 f"{', '.join(PRESETS)}")
            object.__setattr__(self, "preset", preset)
            if self.root is not None:
                raise ValueError("--root: the synthetic dataset is generated, it has no root; "
                                 "drop --root or name a real dataset with --dataset")
        else:
            if self.preset is not None:
                raise ValueError(f"--preset: presets are for the synthetic dataset, not {base}")
            if self.root is None:
                raise ValueError(f"--root: dataset {base!r} needs a path: {DATASETS[base]}")
        if int(self.split) < 1:
            raise ValueError(f"--split: must be >= 1, got {self.split}")
        for key in ("root", "store"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, str(Path(value).expanduser().absolute()))

    @property
    def synthetic(self) -> bool:
        return self.name == "synthetic"

    def open(self, cache_dir: str | Path | None = None):
        """The `claus.data.VideoDataset` this spec names (`dataset.spec` is this spec)."""
        return load_dataset(self.name, self.root, preset=self.preset, seed=self.seed,
                            split=self.split, store=self.store, cache_dir=cache_dir)

    def describe(self) -> str:
        if self.synthetic:
            return f"synthetic:{self.preset} (seed {self.seed})"
        text = f"{self.name} at {self.root}"
        if self.split != 1:
            text += f" split {self.split}"
        return text + (f" (frames from {self.store})" if self.store else "")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any], source: str = "config") -> DatasetSpec:
        return build(cls, d, source)

    def replace(self, **changes: Any) -> DatasetSpec:
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> dict:
        """{"files": {name: sha256}} of the files that define the data (annotations, split
        lists); empty for the synthetic dataset, which its preset and seed define."""
        if self.synthetic:
            return {"files": {}}
        return {"files": data_fingerprint(self.name, self.root)}


def load_dataset(
    name: str = "synthetic",
    root: str | os.PathLike | None = None,
    *,
    preset: str | None = None,
    seed: int = 0,
    split: int = 1,
    store: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> VideoDataset:
    """Open a dataset by name.

    Args:
        name: one of `DATASETS`; "synthetic:<preset>" is short for name="synthetic", preset=...
        root: dataset folder (ucf101-24, jhmdb-21, videos) or JSON file (custom).
        preset: synthetic preset (default "demo").
        seed: synthetic generator seed.
        split: J-HMDB split (1–3).
        store: a frame store folder to read frames from (`python -m claus.data.prepare`).
        cache_dir: synthetic cache folder.
    """
    base, _, sub = name.partition(":")
    if base not in DATASETS:
        choices = "; ".join(f"{k}: {v}" for k, v in DATASETS.items())
        raise ValueError(f"unknown dataset {name!r}; choices: {choices}")
    if base == "synthetic":
        from .synthetic import synthetic_dataset

        ds = synthetic_dataset(sub or preset or "demo", seed=seed, cache_dir=cache_dir)
    else:
        if root is None:
            raise ValueError(f"dataset {base!r} needs a path (--root): {DATASETS[base]}")
        if split != 1 and base != "jhmdb-21":
            raise ValueError(f"--split: {base} has one split (1), got {split}")
        if base == "ucf101-24":
            from .readers import load_ucf24

            ds = load_ucf24(root)
        elif base == "jhmdb-21":
            from .readers import load_jhmdb

            ds = load_jhmdb(root, split=split)
        elif base == "videos":
            from .videos import load_video_folder

            ds = load_video_folder(root)
        else:
            from .custom import load_custom

            ds = load_custom(Path(root))
    if base != "synthetic" and "train" in ds.splits and ds.annotated("train") \
            and ds.num_boxes("train") == 0:
        raise ValueError(f"{root}: no usable ground-truth box in the training split "
                         f"({len(ds.split_indices('train'))} videos; boxes wholly outside the "
                         "frame or of zero area are dropped); check the boxes, or use "
                         "--dataset videos for videos nobody has labelled yet")
    if store is not None:
        from .store import FrameStore

        ds = ds.with_store(FrameStore(store))
    # What reopens this very data (run folders save it; `claus.rounds` checks it).
    ds.spec = DatasetSpec(base, None if base == "synthetic" else str(root), store=store,
                          split=split, preset=(sub or preset) if base == "synthetic" else None,
                          seed=seed)
    return ds


#: Where each dataset keeps the files that define it, relative to its root (the first that
#: exists of each tuple); a custom dataset's root is its JSON file.
_DEFINING = {
    "ucf101-24": [("pyannot_with_class_names.pkl", "pyannot.pkl", "UCF101v2-GT.pkl"),
                  ("testlist01.txt",)],
    "jhmdb-21": [("JHMDB-GT.pkl",)],
    "videos": [("classes.txt",), ("test.json",)],
}


def data_fingerprint(name: str, root: str | os.PathLike) -> dict[str, str]:
    """{file name: sha256} of what defines a dataset (annotations, split lists; for a folder
    of videos also the list of its videos with their sizes, as "videos"): what a run saves
    to notice, on resume, data that changed."""
    root = Path(root)
    if name == "custom":
        return {root.name: sha256_file(root)} if root.is_file() else {}
    out = {}
    for choices in _DEFINING.get(name, []):
        hit = next((root / c for c in choices if (root / c).is_file()), None)
        if hit is not None:
            out[hit.name] = sha256_file(hit)
    if name == "videos":
        from .videos import folder_listing

        listing = "".join(f"{n}\t{_size(p)}\n" for n, p in folder_listing(root))
        out["videos"] = hashlib.sha256(listing.encode()).hexdigest()
    return out


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(1 for _ in path.iterdir())
    return path.stat().st_size
