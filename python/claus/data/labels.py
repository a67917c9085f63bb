"""The label state: which frames carry a human label, from which round, with which boxes.

Budgets are counted in ground-truth boxes of the training split (the paper's convention):
labelling a frame costs its number of boxes, minimum 1 (a frame labelled "no actor" still cost
a look). A budget of p percent is `round(p / 100 · total_boxes(ds))` boxes.

On disk (JSON, written atomically, validated on load)::

    {"format": "claus.labels", "version": 1, "dataset": "synthetic:demo",
     "videos": {"<video>": {"num_frames": 60,
                            "frames": {"12": {"round": 0,
                                              "boxes": [{"tube": 0, "label": 3,
                                                         "box": [x1, y1, x2, y2]}]},
                                       "40": {"round": 1, "boxes": []}}}}}

Frame keys are 0-based frame numbers; `boxes: []` is a frame labelled "no actor"; `tube`
links boxes of one actor across frames (pseudo-labels interpolate along it); boxes are in
original-frame pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import atomic_write_json
from .dataset import VideoDataset

__all__ = [
    "BOXES",
    "BUDGET_UNITS",
    "BudgetUnit",
    "FRAMES",
    "LabelBox",
    "LabelState",
    "LabelStateError",
    "total_boxes",
    "budget_boxes",
    "frame_cost",
    "FORMAT",
    "VERSION",
]

FORMAT = "claus.labels"
VERSION = 1


class LabelStateError(ValueError):
    """A label-state file or operation is invalid; the message names the video/frame/field."""


@dataclass(frozen=True)
class LabelBox:
    """One labelled box: actor track id (links frames), class, [x1, y1, x2, y2] pixels."""

    tube: int
    label: int
    box: tuple[float, float, float, float]

    def to_json(self) -> dict:
        return {"tube": self.tube, "label": self.label, "box": [float(x) for x in self.box]}


def total_boxes(ds: VideoDataset, split: str = "train") -> int:
    """All ground-truth boxes of the split: 100 % of the budget."""
    return ds.num_boxes(split)


def budget_boxes(ds: VideoDataset, percent: float, split: str = "train") -> int:
    """A budget in boxes: `percent` of the split's ground-truth boxes, rounded."""
    if not 0 <= percent <= 100:
        raise ValueError(f"budget must be a percentage in [0, 100], got {percent}")
    return int(round(percent / 100.0 * total_boxes(ds, split)))


def frame_cost(
    ds: VideoDataset, video: int | str, frames: Sequence[int] | np.ndarray
) -> np.ndarray:
    """(n,) int64: cost of labelling each frame = its ground-truth boxes, minimum 1."""
    per = ds.video(video).boxes_per_frame()
    return np.maximum(per[np.asarray(frames, dtype=np.int64)], 1)


class BudgetUnit:
    """What a labelling budget counts. `BOXES`: ground-truth boxes of the training split (the
    paper's convention; a frame costs its boxes, at least 1); `FRAMES`: frames (a frame costs
    1), for videos nobody has annotated, whose boxes are unknown until people label them."""

    name = "boxes"

    def total(self, ds: VideoDataset, split: str = "train") -> int:
        """100 % of the budget."""
        return total_boxes(ds, split)

    def budget(self, ds: VideoDataset, percent: float, split: str = "train") -> int:
        """`percent` of the split's total, rounded."""
        if not 0 <= percent <= 100:
            raise ValueError(f"budget must be a percentage in [0, 100], got {percent}")
        return int(round(percent / 100.0 * self.total(ds, split)))

    def costs(self, video) -> np.ndarray:
        """(num_frames,) int64: the cost of labelling each frame of a `Video`."""
        return np.maximum(1, video.boxes_per_frame()).astype(np.int64)

    def spent(self, labels: LabelState) -> int:
        """What a label state has spent so far."""
        return labels.spent()


class _Frames(BudgetUnit):
    name = "frames"

    def total(self, ds: VideoDataset, split: str = "train") -> int:
        return ds.num_frames(split)

    def costs(self, video) -> np.ndarray:
        return np.ones(video.num_frames, np.int64)

    def spent(self, labels: LabelState) -> int:
        return labels.num_labelled_frames()


BOXES = BudgetUnit()
FRAMES = _Frames()
#: The budget units by name (`RunConfig.budget_unit`).
BUDGET_UNITS = {u.name: u for u in (BOXES, FRAMES)}


class LabelState:
    """Labelled frames per video.

    Args:
        dataset: the dataset's name (checked on load).
        num_frames: {video name: frame count} for every video the state may label (usually the
            training split); labels outside these videos or frames are refused.
    """

    def __init__(self, dataset: str, num_frames: dict[str, int]):
        self.dataset = dataset
        self.num_frames = {str(k): int(v) for k, v in num_frames.items()}
        self._frames: dict[str, dict[int, tuple[int, tuple[LabelBox, ...]]]] = {
            k: {} for k in self.num_frames
        }

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, ds: VideoDataset, split: str = "train") -> LabelState:
        """Nothing labelled yet, over the videos of `split`."""
        return cls(ds.name, {ds[i].name: ds[i].num_frames for i in ds.split_indices(split)})

    @classmethod
    def full(cls, ds: VideoDataset, split: str = "train", round: int = 0) -> LabelState:
        """Every frame of every video in `split` labelled with its ground truth (full labels)."""
        st = cls.empty(ds, split)
        for i in ds.split_indices(split):
            st.reveal(ds, i, range(ds[i].num_frames), round)
        return st

    @classmethod
    def random(
        cls,
        ds: VideoDataset,
        percent: float,
        seed: int | np.random.Generator,
        frames_per_video: int = 3,
        split: str = "train",
        round: int = 0,
    ) -> LabelState:
        """A random initial set: random videos, `frames_per_video` random frames each, revealed
        from ground truth until `percent` of the split's boxes are spent (never more)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        st = cls.empty(ds, split)
        budget = budget_boxes(ds, percent, split)
        for i in rng.permutation(ds.split_indices(split)):
            left = budget - st.spent()
            if left <= 0:
                break
            v = ds[int(i)]
            frames = rng.choice(
                v.num_frames, size=min(frames_per_video, v.num_frames), replace=False
            )
            cost = frame_cost(ds, int(i), frames)
            keep = frames[np.cumsum(cost) <= left]
            if len(keep):
                st.reveal(ds, int(i), sorted(int(f) for f in keep), round)
        return st

    # ------------------------------------------------------------------ labelling
    def _check(self, video: str, frame: int) -> None:
        if video not in self.num_frames:
            raise LabelStateError(f"label state of {self.dataset!r}: unknown video {video!r}")
        n = self.num_frames[video]
        if not 0 <= int(frame) < n:
            raise LabelStateError(
                f"label state: video {video!r}: frame {frame} out of range [0, {n})"
            )

    def label(
        self,
        video: str,
        frame: int,
        boxes: Iterable[LabelBox | tuple],
        round: int,
        overwrite: bool = False,
    ) -> None:
        """Record a human label of one frame; `boxes` empty means "no actor".

        Boxes may be `LabelBox` or (tube, label, box) tuples. Relabelling an already labelled
        frame is refused unless `overwrite` (a selection that picks it twice is a bug).
        """
        self._check(video, frame)
        frame = int(frame)
        if frame in self._frames[video] and not overwrite:
            raise LabelStateError(
                f"label state: video {video!r} frame {frame} is already labelled "
                f"(round {self._frames[video][frame][0]})"
            )
        bs = []
        for b in boxes:
            lb = (
                b
                if isinstance(b, LabelBox)
                else LabelBox(int(b[0]), int(b[1]), tuple(float(x) for x in b[2]))
            )
            if len(lb.box) != 4 or lb.box[2] < lb.box[0] or lb.box[3] < lb.box[1]:
                raise LabelStateError(
                    f"label state: video {video!r} frame {frame}: bad box {lb.box} "
                    "(want [x1, y1, x2, y2] with x2 >= x1, y2 >= y1)"
                )
            bs.append(lb)
        self._frames[video][frame] = (int(round), tuple(bs))

    def reveal(self, ds: VideoDataset, video: int | str, frames: Iterable[int], round: int) -> int:
        """Simulated oracle: label `frames` of a video with their ground truth. Returns the cost."""
        v = ds.video(video)
        cost = 0
        for f in frames:
            gt = v.boxes_at(int(f))
            self.label(
                v.name,
                int(f),
                [LabelBox(k, lab, tuple(float(x) for x in b)) for k, lab, b in gt],
                round,
            )
            cost += max(1, len(gt))
        return cost

    # ------------------------------------------------------------------ queries
    @property
    def videos(self) -> list[str]:
        return list(self.num_frames)

    def is_labelled(self, video: str, frame: int) -> bool:
        return int(frame) in self._frames.get(video, {})

    def frames(self, video: str) -> list[int]:
        """Sorted labelled frames of a video."""
        return sorted(self._frames.get(video, {}))

    def boxes(self, video: str, frame: int) -> tuple[LabelBox, ...]:
        """The boxes a labelled frame revealed (empty: "no actor"); KeyError if unlabelled."""
        try:
            return self._frames[video][int(frame)][1]
        except KeyError:
            raise KeyError(f"video {video!r} frame {frame} is not labelled") from None

    def entries(self, video: str) -> dict[int, tuple[LabelBox, ...]]:
        """{frame: boxes} of a video's labelled frames."""
        return {f: b for f, (_, b) in sorted(self._frames.get(video, {}).items())}

    def rounds(self, video: str) -> np.ndarray:
        """(num_frames,) int32: the round each frame was labelled in, -1 = unlabelled."""
        if video not in self.num_frames:
            raise LabelStateError(f"label state: unknown video {video!r}")
        r = np.full(self.num_frames[video], -1, np.int32)
        for f, (rd, _) in self._frames[video].items():
            r[f] = rd
        return r

    def labelled_videos(self) -> list[str]:
        """Videos with at least one labelled frame, in state order."""
        return [v for v, fr in self._frames.items() if fr]

    def unlabelled_videos(self) -> list[str]:
        return [v for v, fr in self._frames.items() if not fr]

    def num_labelled_frames(self) -> int:
        return sum(len(fr) for fr in self._frames.values())

    def spent(self, round: int | None = None) -> int:
        """Boxes spent (cost = boxes per frame, minimum 1), in total or in one round."""
        return sum(
            max(1, len(b))
            for fr in self._frames.values()
            for rd, b in fr.values()
            if round is None or rd == round
        )

    @property
    def last_round(self) -> int:
        """The highest round number present, -1 when nothing is labelled."""
        return max((rd for fr in self._frames.values() for rd, _ in fr.values()), default=-1)

    def copy(self) -> LabelState:
        st = LabelState(self.dataset, self.num_frames)
        st._frames = {k: dict(v) for k, v in self._frames.items()}
        return st

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LabelState)
            and self.dataset == other.dataset
            and self.num_frames == other.num_frames
            and self._frames == other._frames
        )

    # ------------------------------------------------------------------ files
    def to_json(self) -> dict:
        vids = {}
        for v, n in self.num_frames.items():
            vids[v] = {
                "num_frames": n,
                "frames": {
                    str(f): {"round": rd, "boxes": [b.to_json() for b in bs]}
                    for f, (rd, bs) in sorted(self._frames[v].items())
                },
            }
        return {"format": FORMAT, "version": VERSION, "dataset": self.dataset, "videos": vids}

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as JSON, atomically."""
        atomic_write_json(path, self.to_json(), indent=None)

    @classmethod
    def from_json(
        cls, doc: dict, where: str = "<label state>", ds: VideoDataset | None = None
    ) -> LabelState:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise LabelStateError(
                f"{where}: not a claus label state (field 'format' must be {FORMAT!r})"
            )
        if doc.get("version") != VERSION:
            raise LabelStateError(
                f"{where}: unsupported version {doc.get('version')!r} (this claus reads {VERSION})"
            )
        vids = doc.get("videos")
        if not isinstance(vids, dict):
            raise LabelStateError(f"{where}: field 'videos' must be an object")
        if ds is not None and doc.get("dataset") != ds.name:
            raise LabelStateError(
                f"{where}: made for dataset {doc.get('dataset')!r}, not {ds.name!r}"
            )
        st = cls(str(doc.get("dataset")), _frame_counts(vids, where, ds))
        for v, d in vids.items():
            for f, e in d.get("frames", {}).items():
                fi, rd, boxes = _frame_entry(v, f, e, where)
                if ds is not None and any(not 0 <= b[1] < ds.num_classes for b in boxes):
                    raise LabelStateError(
                        f"{where}: video {v!r} frame {fi}: label outside [0, {ds.num_classes})"
                    )
                try:
                    st.label(v, fi, boxes, rd)
                except LabelStateError as err:
                    raise LabelStateError(f"{where}: {err}") from None
        return st

    @classmethod
    def load(cls, path: str | os.PathLike, ds: VideoDataset | None = None) -> LabelState:
        """Read and validate a label-state file (against `ds` when given)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"label state {p} does not exist")
        from ..io import read_json

        try:
            doc = read_json(p, "label-state file")
        except ValueError as e:
            raise LabelStateError(str(e)) from None
        return cls.from_json(doc, str(p), ds)


def _frame_counts(vids: dict, where: str, ds: VideoDataset | None) -> dict[str, int]:
    """{video: frames} of a label-state file's videos, checked against `ds` when given."""
    num = {}
    for v, d in vids.items():
        try:
            num[v] = int(d["num_frames"])
        except (KeyError, TypeError, ValueError):
            raise LabelStateError(f"{where}: video {v!r}: missing or bad 'num_frames'") from None
        if ds is None:
            continue
        try:
            real = ds.video(v).num_frames
        except KeyError:
            raise LabelStateError(f"{where}: unknown video {v!r} (not in {ds.name})") from None
        if real != num[v]:
            raise LabelStateError(
                f"{where}: video {v!r} has {num[v]} frames here but {real} in {ds.name}"
            )
    return num


def _frame_entry(v: str, f: str, e, where: str) -> tuple[int, int, list]:
    """(frame, round, [(tube, label, box)]) of one labelled frame of a label-state file."""
    try:
        fi = int(f)
        boxes = [
            (int(b["tube"]), int(b["label"]), [float(x) for x in b["box"]])
            for b in e["boxes"]
        ]
        rd = int(e["round"])
    except (KeyError, TypeError, ValueError) as err:
        raise LabelStateError(f"{where}: video {v!r} frame {f!r}: bad entry ({err})") from None
    if rd < 0:
        raise LabelStateError(f"{where}: video {v!r} frame {fi}: round {rd} < 0")
    return fi, rd, boxes
