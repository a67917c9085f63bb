"""Clip datasets for training (sparse labels → pseudo-masks) and inference (sliding windows).

Both are `torch.utils.data.Dataset`s whose items are dicts:

    clip       (3, T, H, W) float32 RGB in [0, 1]
    mask       (T, H, W) uint8 pseudo-label (1 = actor), rendered at output size
    annotated  (T,) bool, frames carrying a human label
    label      int64, the video's class
    video      int64, the video's index in the dataset
    frames     (T,) int64, the frame indices (0-based; clamped at the video's ends)
    valid      (T,) bool, positions that are not padding (inference; all True in training)

Boxes and masks are in output pixels: a box (x1, y1, x2, y2) predicted on an inference clip
of size (H, W) is (x1·w0/W, y1·h0/H, x2·w0/W, y2·h0/H) in original pixels, (h0, w0) =
(video.height, video.width). Where the dataset has pixel masks (J-HMDB), a track whose id is a
dataset tube index (as the simulated oracle writes them) uses the nearest labelled mask.

Clip geometry is one value, `ClipGeometry(T, stride, size)`: a run's is its training
config's (`TrainConfig.geometry`), and a call given none takes TrainConfig's defaults
(`default_geometry`); the loose `T=` / `stride=` / `size=` keywords only override single
fields of it. Frame t of a clip is `centre + stride·(t - T//2)` (training) — the labelled
centre frame sits at position T//2 — clamped to the video. Randomness (which labelled frame,
crop, flip) comes from a generator derived from (seed, epoch, item index), so results do not
depend on the number of DataLoader workers; call `set_epoch` each epoch.

Unreadable videos (`skip_unreadable=True`; `claus.data.faults`): a `FrameReadError` inside a
DataLoader worker must not end a run. A training item whose video cannot be read is made from
another labelled video instead (drawn from (seed, epoch, index) too), so batches keep their
size; an inference item comes back as a marker. Either way the item lists the failure under
"unreadable" and `collate_clips` gathers those lists (and drops the markers), so the main
process learns which videos failed; `TrainClips.exclude` leaves them out from the next
`set_epoch` on (workers are copies made at the start of an epoch). Nothing changes while every
video reads: no item carries the key and the sample order is the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate

from .dataset import VideoDataset
from .faults import one_line
from .frames import FrameReadError
from .geometry import ClipGeometry, Size
from .labels import LabelState
from .pseudo import PseudoTracks, pseudo_tracks, render_boxes

__all__ = [
    "ClipGeometry",
    "InferenceClips",
    "TrainClips",
    "clip_frames",
    "collate_clips",
    "default_geometry",
    "resolve_geometry",
    "sliding_windows",
]



def default_geometry() -> ClipGeometry:
    """The geometry of a default `TrainConfig` (the one place clip defaults live)."""
    from claus.training.config import TrainConfig  # training sits above data: imported late

    return TrainConfig().geometry


def resolve_geometry(geometry: ClipGeometry | None = None, *, T: int | None = None,
                     stride: int | None = None, size: Size = None) -> ClipGeometry:
    """`geometry` (default: `default_geometry()`) with the fields given as keywords replaced.

    The keywords are for quick calls and tests (`evaluate_split(m, ds, T=4, stride=1)`); code
    that has a config passes its `TrainConfig.geometry` whole. None keeps the field (so
    `size=None` cannot ask for the source size over a geometry that has one: pass a geometry).
    """
    if geometry is None:
        geometry = default_geometry()
    elif not isinstance(geometry, ClipGeometry):
        raise TypeError(f"geometry must be a ClipGeometry, got {type(geometry).__name__} (pass "
                        "T=, stride=, size= as keywords)")
    changes = {k: v for k, v in (("T", T), ("stride", stride), ("size", size)) if v is not None}
    return geometry.replace(**changes) if changes else geometry

#: Salt of the generator that draws a replacement for an unreadable training item.
_REPLACE = 0x5B5


def _failure(ds: VideoDataset, vi: int, err: FrameReadError) -> dict:
    """What an item reports about an unreadable video (plain values: it crosses processes)."""
    return {"index": int(vi), "video": ds[vi].name, "file": err.path, "reason": one_line(err)}


def collate_clips(items: list[dict]) -> dict:
    """`default_collate` of the items that hold a clip, plus "unreadable": every item's
    failures (dicts with index, video, file, reason) and "dropped": the number of markers
    (items without a clip) left out."""
    failures = [f for it in items for f in it.get("unreadable", ())]
    good = [{k: v for k, v in it.items() if k != "unreadable"} for it in items if "clip" in it]
    out = default_collate(good) if good else {}
    out["unreadable"] = failures
    out["dropped"] = len(items) - len(good)
    return out


def clip_frames(centre: int, num_frames: int, T: int, stride: int) -> np.ndarray:
    """(T,) int64 frame indices of a clip centred on `centre` (position T//2), clamped."""
    idx = centre + stride * (np.arange(T) - T // 2)
    return np.clip(idx, 0, num_frames - 1).astype(np.int64)


def sliding_windows(num_frames: int, T: int, stride: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Windows that cover every frame exactly once as a valid position.

    Frames with the same residue modulo `stride` form a chain; each chain is cut into windows
    of T; the last window of a chain is padded by repeating its last frame (valid = False).

    Returns:
        [(frames (T,) int64, valid (T,) bool)].
    """
    out = []
    for r in range(min(stride, num_frames)):
        chain = np.arange(r, num_frames, stride, dtype=np.int64)
        for s in range(0, len(chain), T):
            part = chain[s : s + T]
            valid = np.zeros(T, bool)
            valid[: len(part)] = True
            out.append((np.concatenate([part, np.full(T - len(part), part[-1], np.int64)]), valid))
    return out


class _ClipBase(Dataset):
    def __init__(
        self,
        ds: VideoDataset,
        labels: LabelState | None,
        geometry: ClipGeometry,
        seed: int,
    ):
        self.ds, self.labels, self.geometry, self.seed = ds, labels, geometry, seed
        self.T, self.stride, self.size = geometry.T, geometry.stride, geometry.out_size
        self.epoch = 0
        self._pseudo: dict[int, PseudoTracks] = {}

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream (call once per epoch)."""
        self.epoch = int(epoch)

    def video_label(self, vi: int) -> int:
        """A video's class: its ground truth, or for a video nobody annotated the most frequent
        class of its labelled boxes (ties: the lowest), -1 while it has none."""
        v = self.ds[vi]
        if v.annotated or self.labels is None or v.name not in self.labels.num_frames:
            return int(v.label)
        counts = np.bincount([b.label for bs in self.labels.entries(v.name).values()
                              for b in bs], minlength=1)
        return int(np.argmax(counts)) if counts.sum() else -1

    def pseudo(self, vi: int) -> PseudoTracks:
        """Pseudo-labels of video `vi` from the label state (cached)."""
        if vi not in self._pseudo:
            v = self.ds[vi]
            entries = (
                self.labels.entries(v.name)
                if self.labels is not None and v.name in self.labels.num_frames
                else {}
            )
            self._pseudo[vi] = pseudo_tracks(entries, v.num_frames)
        return self._pseudo[vi]

    def _make(
        self,
        vi: int,
        frames: np.ndarray,
        rng: np.random.Generator | None,
        crop_scale: tuple[float, float],
        flip: bool,
        color_jitter: float = 0.0,
        channel_shuffle: bool = False,
    ) -> dict:
        v = self.ds[vi]
        raw = self.ds.read_frames(vi, frames)  # (T, h, w, 3) uint8 at source size
        h, w = raw.shape[1:3]
        H, W = self.size if self.size is not None else (h, w)
        # Crop window in source pixels (aspect kept), then resize to (H, W).
        if rng is not None:
            s = rng.uniform(*crop_scale)
            ch, cw = max(1, int(round(h * s))), max(1, int(round(w * s)))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            do_flip = flip and rng.random() < 0.5
        else:
            ch, cw, y0, x0, do_flip = h, w, 0, 0, False
        x = (
            torch.from_numpy(raw[:, y0 : y0 + ch, x0 : x0 + cw])
            .permute(0, 3, 1, 2)
            .float()
            .div_(255)
        )
        if (ch, cw) != (H, W):
            x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False, antialias=False)
        if do_flip:
            x = x.flip(-1)
        if rng is not None and (color_jitter > 0 or channel_shuffle):
            x = _color_augment(x, rng, color_jitter, channel_shuffle)
        clip = x.permute(1, 0, 2, 3).contiguous()  # (3, T, H, W)

        pt = self.pseudo(vi)
        # Boxes: original pixels → source pixels → crop → output pixels (→ flipped).
        crop = (x0, y0, cw, ch)
        mask = render_boxes(self._to_out(pt.boxes[frames], v, crop, (h, w), (H, W), do_flip), H, W)
        self._masks_over(mask, vi, pt, frames, crop, (h, w), (H, W), do_flip)
        return {
            "clip": clip,
            "mask": torch.from_numpy(mask),
            "annotated": torch.from_numpy(pt.annotated[frames].copy()),
            "label": torch.tensor(self.video_label(vi), dtype=torch.int64),
            "video": torch.tensor(vi, dtype=torch.int64),
            "frames": torch.from_numpy(frames.copy()),
        }

    def _masks_over(self, mask, vi, pt, frames, crop, src_hw, out_hw, do_flip) -> None:
        """Where the dataset has pixel masks, replace held boxes by the nearest labelled mask."""
        v = self.ds[vi]
        x0, y0, cw, ch = crop
        h, w = src_hw
        H, W = out_hw
        for j, k in enumerate(pt.tubes):
            if not 0 <= k < len(v.tubes) or v.tubes[k].mask_fn is None:
                continue
            fn = v.tubes[k].mask_fn
            for t, f in enumerate(frames):
                s = pt.src[f, j]
                if s < 0 or not v.tubes[k].start <= s < v.tubes[k].end:
                    continue
                m = torch.from_numpy(np.ascontiguousarray(fn(int(s)), dtype=np.float32))[None, None]
                m = F.interpolate(m, size=(h, w), mode="nearest")[0, 0, y0 : y0 + ch, x0 : x0 + cw]
                m = F.interpolate(m[None, None], size=(H, W), mode="nearest")[0, 0]
                if do_flip:
                    m = m.flip(-1)
                # Replace this track's box on this frame by its mask; other tracks stay.
                others = np.delete(pt.boxes[[f]], j, axis=1)
                ob = render_boxes(self._to_out(others, v, crop, src_hw, out_hw, do_flip), H, W)[0]
                mask[t] = np.maximum(ob, m.numpy().astype(np.uint8))

    @staticmethod
    def _to_out(b, v, crop, src_hw, out_hw, do_flip):
        x0, y0, cw, ch = crop
        h, w = src_hw
        H, W = out_hw
        b = b.astype(np.float32).copy()
        b[..., 0::2] = (b[..., 0::2] * (w / v.width) - x0) * (W / cw)
        b[..., 1::2] = (b[..., 1::2] * (h / v.height) - y0) * (H / ch)
        if do_flip:
            b[..., [0, 2]] = W - b[..., [2, 0]]
        return b


def _color_augment(x: torch.Tensor, rng: np.random.Generator, jitter: float,
                   shuffle: bool) -> torch.Tensor:
    """The same colour change on every frame of a clip: (T,3,H,W) float in [0,1] → same.

    Per-channel gain in [1-j, 1+j] and offset in [-j/2, j/2] (j = `jitter`), then, with
    `shuffle`, a random permutation of the RGB channels. Where colour says nothing about the
    action (people wear anything), this keeps a detector from remembering videos by their look.
    """
    gain = torch.from_numpy(rng.uniform(1 - jitter, 1 + jitter, 3).astype(np.float32))
    offset = torch.from_numpy(rng.uniform(-jitter / 2, jitter / 2, 3).astype(np.float32))
    x = (x * gain[:, None, None] + offset[:, None, None]).clamp_(0, 1)
    if shuffle:
        x = x[:, torch.from_numpy(rng.permutation(3))]
    return x


class TrainClips(_ClipBase):
    """Training clips centred on random labelled frames, with augmentation.

    Args:
        ds: the dataset (ideally reading from a frame store).
        labels: the label state; only its labelled videos are used.
        geometry: clip length, frame stride and output size (`ClipGeometry`; default
            `default_geometry()`, TrainConfig's).
        T, stride, size: replace single fields of `geometry` (`resolve_geometry`).
        augment: random crop (scale in `crop_scale`, aspect kept), horizontal flip and the
            colour change of `color_jitter` / `channel_shuffle` (see `_color_augment`).
        sampling: "video" (default): each item is a labelled video (×`clips_per_video`) and a
            random labelled frame in it, so every video counts equally; "frame": one item per
            labelled frame, in order.
        balance: with "video" sampling, items go round the classes of the labelled videos in
            turn and through each class's videos in a per-epoch shuffled order, so every class
            gets the same number of clips however few videos it has (the epoch's length is
            unchanged). Videos without a class (label < 0) form a class of their own.
        seed: the run's seed (randomness derives from (seed, epoch, index)).
        skip_unreadable: an item whose video cannot be read is made from another labelled
            video (module docstring); without it the `FrameReadError` propagates.
    """

    def __init__(
        self,
        ds: VideoDataset,
        labels: LabelState,
        geometry: ClipGeometry | None = None,
        *,
        T: int | None = None,
        stride: int | None = None,
        size: Size = None,
        augment: bool = True,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        flip: bool = True,
        sampling: str = "video",
        clips_per_video: int = 1,
        seed: int = 0,
        color_jitter: float = 0.0,
        channel_shuffle: bool = False,
        balance: bool = False,
        skip_unreadable: bool = False,
    ):
        super().__init__(ds, labels, resolve_geometry(geometry, T=T, stride=stride, size=size),
                         seed)
        self.skip_unreadable = bool(skip_unreadable)
        self.bad: set[int] = set()  # videos found unreadable (main process)
        self._excluded: frozenset[int] = frozenset()  # those left out this epoch
        if not 0 <= color_jitter < 1:
            raise ValueError(f"color_jitter must be in [0, 1), got {color_jitter}")
        self.color_jitter, self.channel_shuffle = float(color_jitter), bool(channel_shuffle)
        if sampling not in ("video", "frame"):
            raise ValueError(f"sampling must be 'video' or 'frame', got {sampling!r}")
        self.augment, self.crop_scale, self.flip = augment, crop_scale, flip
        self.sampling, self.clips_per_video = sampling, int(clips_per_video)
        self.videos = [ds.index(n) for n in labels.labelled_videos()]
        if not self.videos:
            raise ValueError("TrainClips: the label state labels no frame")
        self.balance = bool(balance) and sampling == "video"
        by_class: dict[int, list[int]] = {}
        if self.balance:
            for vi in self.videos:
                by_class.setdefault(self.video_label(vi), []).append(vi)
        self.by_class = [by_class[c] for c in sorted(by_class)]
        self.items: list[tuple[int, int]] = []
        if sampling == "frame":
            self.items = [(vi, f) for vi in self.videos for f in labels.frames(ds[vi].name)]

    def __len__(self) -> int:
        return (
            len(self.items) if self.sampling == "frame" else len(self.videos) * self.clips_per_video
        )

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream and leave out the videos `exclude` named (once per epoch)."""
        super().set_epoch(epoch)
        self._excluded = frozenset(self.bad)

    def exclude(self, videos: Sequence[int | str]) -> None:
        """Leave these videos (indices or names) out from the next `set_epoch` on."""
        self.bad.update(self.ds.index(v) if isinstance(v, str) else int(v) for v in videos)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.sampling == "frame":
            vi, centre = self.items[i]
        else:
            vi = self._balanced_video(i) if self.balance else self.videos[i % len(self.videos)]
            centre = self._centre(vi, rng)
        if not self.skip_unreadable:
            return self._item(vi, centre, rng)
        failures: list[dict] = []
        tried: set[int] = set()
        while True:
            if vi not in self._excluded:
                try:
                    item = self._item(vi, centre, rng)
                except FrameReadError as e:
                    failures.append(_failure(self.ds, vi, e))
                else:
                    if failures:
                        item["unreadable"] = failures
                    return item
            tried.add(vi)
            pick = self._replacement(i, len(tried), tried)
            if pick is None:  # no labelled video left to read: a marker
                return {"unreadable": failures}
            vi, centre = pick

    def _centre(self, vi: int, rng: np.random.Generator) -> int:
        lab = self.labels.frames(self.ds[vi].name)
        return lab[int(rng.integers(len(lab)))]

    def _item(self, vi: int, centre: int, rng: np.random.Generator) -> dict:
        frames = clip_frames(centre, self.ds[vi].num_frames, self.T, self.stride)
        item = self._make(vi, frames, rng if self.augment else None, self.crop_scale, self.flip,
                          self.color_jitter, self.channel_shuffle)
        item["valid"] = torch.ones(self.T, dtype=torch.bool)
        return item

    def _replacement(self, i: int, attempt: int, tried: set[int]) -> tuple[int, int] | None:
        """(video, centre) standing in for item i after `attempt` unreadable videos: a random
        labelled video (a random labelled item with "frame" sampling) not left out this epoch
        and not tried yet, drawn from (seed, epoch, i, attempt); None when none is left."""
        rng = np.random.default_rng([self.seed, self.epoch, i, attempt, _REPLACE])
        skip = self._excluded | tried
        if self.sampling == "frame":
            items = [k for k, (vi, _) in enumerate(self.items) if vi not in skip]
            return self.items[items[int(rng.integers(len(items)))]] if items else None
        videos = [vi for vi in self.videos if vi not in skip]
        if not videos:
            return None
        vi = videos[int(rng.integers(len(videos)))]
        return vi, self._centre(vi, rng)

    def _balanced_video(self, i: int) -> int:
        # Item i takes class i mod C and that class's (i div C)-th video of this epoch's
        # shuffle (cycling), so a class's videos are each used before any repeats.
        c = i % len(self.by_class)
        vids = self.by_class[c]
        order = np.random.default_rng([self.seed, self.epoch, 1 << 20, c]).permutation(len(vids))
        return vids[int(order[(i // len(self.by_class)) % len(vids)])]


class InferenceClips(_ClipBase):
    """Sliding windows over whole videos (evaluation and pool scoring); no augmentation.

    Every frame of every listed video is a valid position of exactly one window
    (`sliding_windows`). Items also carry `mask`/`annotated` from `labels` when given (pool
    scoring of partly labelled videos), else zeros/False.

    Args:
        ds: the dataset.
        videos: video indices, or a split name ("test"), or None for all videos.
        geometry, T, stride, size: as in `TrainClips`.
        labels: optional label state.
        skip_unreadable: a window whose frames cannot be read comes back as a marker
            {"unreadable": [failure]} (`collate_clips` drops it) instead of raising.
    """

    def __init__(
        self,
        ds: VideoDataset,
        videos: Sequence[int] | str | None = "test",
        geometry: ClipGeometry | None = None,
        *,
        T: int | None = None,
        stride: int | None = None,
        size: Size = None,
        labels: LabelState | None = None,
        skip_unreadable: bool = False,
    ):
        super().__init__(ds, labels, resolve_geometry(geometry, T=T, stride=stride, size=size), 0)
        self.skip_unreadable = bool(skip_unreadable)
        vids = (
            ds.split_indices(videos) if videos is None or isinstance(videos, str) else list(videos)
        )
        self.windows = [(vi, fr, va) for vi in vids
                        for fr, va in sliding_windows(ds[vi].num_frames, self.T, self.stride)]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict:
        vi, frames, valid = self.windows[i]
        try:
            item = self._make(vi, frames, None, (1.0, 1.0), False)
        except FrameReadError as e:
            if not self.skip_unreadable:
                raise
            return {"unreadable": [_failure(self.ds, vi, e)]}
        item["valid"] = torch.from_numpy(valid.copy())
        return item
