"""claus.data: datasets, the synthetic benchmark, frame store, label state, pseudo-labels, clips.

Typical use::

    from claus.data import load_dataset, ClipGeometry, LabelState, TrainClips, InferenceClips
    ds = load_dataset("synthetic")                 # demo preset, generated once and cached
    labels = LabelState.random(ds, percent=1, seed=0)
    geo = ClipGeometry(T=8, stride=2, size=None)   # a run's: TrainConfig.geometry
    train = TrainClips(ds, labels, geo)            # items: clip, mask, annotated, label, ...
    test = InferenceClips(ds, "test", geo)         # sliding windows covering every frame

Conventions: frames 0-based; boxes [x1, y1, x2, y2] float32 in original-frame pixels; budgets
in ground-truth boxes of the training split.

The clip datasets (`TrainClips`, `InferenceClips`: torch `Dataset`s) load on first use, so the
tools that only read annotations (importers, `claus.data.import_ava`) never import torch.
"""

from ..lazy import lazy_getattr
from .custom import import_ava_csv, load_custom, save_custom
from .dataset import Tube, Video, VideoDataset
from .frames import ArrayFrames, FrameReadError, FrameSource, ImageFolderFrames, VideoFileFrames
from .labels import (
    BUDGET_UNITS,
    BudgetUnit,
    LabelBox,
    LabelState,
    LabelStateError,
    budget_boxes,
    frame_cost,
    total_boxes,
)
from .pseudo import PseudoTracks, pseudo_tracks, render_boxes
from .readers import load_act_gt, load_jhmdb, load_ucf24
from .registry import DATASETS, TRAIN_DEFAULTS, DatasetSpec, load_dataset, train_defaults
from .safe_pickle import UnsafePickleError, safe_load
from .store import FrameStore, prepare_store
from .synthetic import PRESETS, SyntheticConfig, synthetic_dataset
from .videos import load_video_folder

__all__ = [
    "ArrayFrames",
    "BUDGET_UNITS",
    "BudgetUnit",
    "ClipGeometry",
    "DATASETS",
    "DatasetSpec",
    "TRAIN_DEFAULTS",
    "train_defaults",
    "FrameReadError",
    "FrameSource",
    "FrameStore",
    "ImageFolderFrames",
    "InferenceClips",
    "LabelBox",
    "LabelState",
    "LabelStateError",
    "PRESETS",
    "PseudoTracks",
    "SyntheticConfig",
    "TrainClips",
    "Tube",
    "UnsafePickleError",
    "Video",
    "VideoDataset",
    "VideoFileFrames",
    "budget_boxes",
    "clip_frames",
    "frame_cost",
    "import_ava_csv",
    "load_act_gt",
    "load_custom",
    "load_dataset",
    "load_jhmdb",
    "load_ucf24",
    "load_video_folder",
    "prepare_store",
    "pseudo_tracks",
    "render_boxes",
    "safe_load",
    "save_custom",
    "sliding_windows",
    "synthetic_dataset",
    "total_boxes",
]

#: Names loaded on first access (PEP 562): they need torch, most of this package does not.
_LAZY = {name: ".clips" for name in ("ClipGeometry", "InferenceClips", "TrainClips",
                                     "clip_frames", "sliding_windows")}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
