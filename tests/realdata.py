"""Small datasets in the real release formats, rendered for tests (and the pytest fixtures).

Each `render_*` writes one layout the readers of `claus.data` open, with frames drawn so that a
tiny detector has something to learn: a textured background per video that pans a pixel per
frame, and every ground-truth box filled by its class's shape and colour (class 0 ellipse,
1 rectangle, 2 diamond, 3 triangle, repeating; colours in `CLASS_COLOURS`). All of them return
a `Rendered`: what to pass to `load_dataset` / the CLIs, and what was written, in claus
conventions (0-based frames, [x1, y1, x2, y2] edge boxes).

* `render_ucf24`: a subset of the REAL UCF-101-24 annotations (pyannot_with_class_names.pkl and
  testlist01.txt from the shared data folder), written in the same pickle structure, with frames
  `rgb-images/<Class>/<video>/%05d.jpg` (or `videos/<Class>/<video>.avi`). The readers assume
  UCF-101's 320×240 geometry (the pickles do not record it), so frames keep it and videos are
  cut to a window of `max_frames` frames around their first tube instead (tubes shifted and
  cut with them); `max_frames=None` keeps the real frame counts and tubes (slow: UCF videos
  have 35–900 frames).
* `render_jhmdb`: the ACT/MOC `JHMDB-GT.pkl` (3 splits) with `Frames/<class>/<video>/%05d.png`
  and `puppet_mask/.../puppet_mask.mat`, non-square frames (80×60 by default).
* `render_custom`: a claus dataset JSON file with image folders.
* `render_videos`: the same videos as `render_custom`, as .avi (MPEG-4 part 2) and .mp4 (H.264,
  with B-frames) files decoded by PyAV, referenced from a claus dataset JSON file.
* `write_i3d_checkpoint`: a random state dict with piergiaj/pytorch-i3d's `InceptionI3d`
  parameter names and shapes (what `--model i3d --weights` loads).

Fixtures (session-scoped, registered in conftest): `real_ucf24` (skips without the shared data
folder), `real_jhmdb`, `real_custom`, `real_videos`, `i3d_weights`. They are shared by every
test of a session: treat them as read-only and render your own copy to change one.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# The shared data folder, found as conftest's `shared_dir` finds it.
SHARED = Path(os.environ.get("CLAUS_SHARED", REPO.parent / "shared"))
UCF24_SHARED = SHARED / "data" / "ucf101-24"

#: RGB fill of class k's actors (k modulo the list); far from the grey-ish backgrounds.
CLASS_COLOURS = (
    (230, 40, 40),
    (40, 210, 60),
    (50, 90, 240),
    (240, 210, 30),
    (210, 60, 220),
    (30, 220, 220),
)

UCF24_CLASSES = ("Basketball", "Diving", "Fencing")  # single actors, one diver, two fencers
JHMDB_CLASSES = ("brush_hair", "catch", "clap")
CUSTOM_CLASSES = ("wave", "jump", "run")


@dataclass
class RenderedVideo:
    """One rendered video, in claus conventions.

    Attributes:
        name, label, split, num_frames: as `claus.data.Video`.
        tubes: (label, start, boxes (n, 4) float32 [x1, y1, x2, y2] edges) per actor, the
            boxes drawn (for UCF-101-24 after the reader's clipping to the frame).
        source: the frame files' pattern (`.../{:05d}.jpg`, numbered from `first_frame`) or
            the video file.
        first_frame: the file number of frame 0 (image patterns only).
        offset: for UCF-101-24, the real video's frame that became frame 0 (`max_frames`).
    """

    name: str
    label: int
    split: str
    num_frames: int
    tubes: list[tuple[int, int, np.ndarray]] = field(default_factory=list)
    source: str = ""
    first_frame: int = 1
    offset: int = 0

    @property
    def num_boxes(self) -> int:
        return sum(len(b) for _, _, b in self.tubes)


@dataclass
class Rendered:
    """What a `render_*` wrote: pass `dataset` / `root` (and `split`) to `load_dataset` or as
    `--dataset` / `--root` (`--split`); the rest is what a test compares against."""

    dataset: str
    root: Path
    classes: list[str]
    videos: dict[str, RenderedVideo]
    frame_size: tuple[int, int]  # (height, width)
    split: int = 1
    seconds: float = 0.0  # how long rendering took

    def names(self, split: str | None = None) -> list[str]:
        """Video names of a split (None: all), sorted."""
        return sorted(n for n, v in self.videos.items() if split is None or v.split == split)

    @property
    def num_train(self) -> int:
        return len(self.names("train"))

    @property
    def num_test(self) -> int:
        return len(self.names("test"))

    def num_frames(self, split: str | None = "train") -> int:
        return sum(self.videos[n].num_frames for n in self.names(split))

    def num_boxes(self, split: str | None = "train") -> int:
        return sum(self.videos[n].num_boxes for n in self.names(split))

    def num_tubes(self, split: str | None = "train") -> int:
        return sum(len(self.videos[n].tubes) for n in self.names(split))

    def cli_args(self) -> list[str]:
        """`--dataset NAME --root PATH` (and `--split K` for J-HMDB-21)."""
        args = ["--dataset", self.dataset, "--root", str(self.root)]
        return args + (["--split", str(self.split)] if self.dataset == "jhmdb-21" else [])

    def load(self, **kw):
        """`claus.data.load_dataset` on what was rendered."""
        from claus.data import load_dataset

        if self.dataset == "jhmdb-21":
            kw.setdefault("split", self.split)
        return load_dataset(self.dataset, self.root, **kw)


# ------------------------------------------------------------------ drawing


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A muted, textured (H, W + 8, 3) uint8 scene: blotches of colour plus fine stripes; the
    8 extra columns let frames pan across it."""
    from PIL import Image

    coarse = rng.integers(70, 150, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((width + 8, height), Image.BICUBIC)
    bg = np.asarray(img, dtype=np.int16)
    yy, xx = np.mgrid[0:height, 0 : width + 8]
    period = int(rng.integers(3, 7))
    bg = bg + 14 * (((xx + yy) // period) % 2)[..., None] - 7
    return np.clip(bg, 0, 255).astype(np.uint8)


def _shape(draw, label: int, box: np.ndarray) -> None:
    """Fill `box` (x1, y1, x2, y2 edges) with class `label`'s shape and colour."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x2, y2 = max(x2 - 1, x1), max(y2 - 1, y1)  # PIL takes inclusive corners
    colour = CLASS_COLOURS[label % len(CLASS_COLOURS)]
    kind = label % 4
    if kind == 0:
        draw.ellipse([x1, y1, x2, y2], fill=colour)
    elif kind == 1:
        draw.rectangle([x1, y1, x2, y2], fill=colour)
    else:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        pts = (
            [(cx, y1), (x2, cy), (cx, y2), (x1, cy)]
            if kind == 2
            else [(cx, y1), (x2, y2), (x1, y2)]
        )
        draw.polygon(pts, fill=colour)


def _frames(
    tubes: Sequence[tuple[int, int, np.ndarray]],
    num_frames: int,
    size: tuple[int, int],
    seed: Sequence[int],
) -> Iterator[np.ndarray]:
    """The (H, W, 3) uint8 frames 0..num_frames-1 of one video (0-based frame f draws the box
    of every tube at f)."""
    from PIL import Image, ImageDraw

    H, W = size
    bg = _background(np.random.default_rng(list(seed)), H, W)
    for f in range(num_frames):
        off = f % 8
        img = Image.fromarray(np.ascontiguousarray(bg[:, off : off + W]))
        draw = ImageDraw.Draw(img)
        for label, start, boxes in tubes:
            if start <= f < start + len(boxes):
                _shape(draw, label, boxes[f - start])
        yield np.asarray(img)


def _mask(tubes, num_frames: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W, T) uint8 masks of the drawn shapes (J-HMDB's `part_mask` layout)."""
    from PIL import Image, ImageDraw

    H, W = size
    out = np.zeros((H, W, num_frames), np.uint8)
    for f in range(num_frames):
        img = Image.new("RGB", (W, H))
        draw = ImageDraw.Draw(img)
        for label, start, boxes in tubes:
            if start <= f < start + len(boxes):
                _shape(draw, label, boxes[f - start])
        out[:, :, f] = np.asarray(img).any(axis=2)
    return out


def _write_images(folder: Path, frames: Iterator[np.ndarray], ext: str, first: int = 1) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    opts = {"quality": 90} if ext == "jpg" else {"compress_level": 1}
    for i, fr in enumerate(frames):
        Image.fromarray(fr).save(folder / f"{i + first:05d}.{ext}", **opts)


def _write_video(path: Path, frames: Iterator[np.ndarray], size: tuple[int, int]) -> None:
    """Encode frames at 25 fps: .avi as MPEG-4 part 2 (I/P frames), anything else as H.264
    (libx264's defaults, B-frames included: decode order differs from display order)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "mpeg4" if path.suffix == ".avi" else "libx264"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.height, s.width = size
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = 12
        if codec == "mpeg4":
            s.codec_context.bit_rate = 2_000_000
        else:
            s.codec_context.options = {"crf": "18", "preset": "ultrafast", "bf": "2"}
        for fr in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _clock():
    import time

    return time.perf_counter()


# ------------------------------------------------------------------ UCF-101-24


@lru_cache(maxsize=2)
def ucf24_annotations(source: str | os.PathLike = UCF24_SHARED) -> tuple[dict, list[str]]:
    """The real annotation pickle (loaded once per process; the restricted unpickler takes
    ~1.5 s on it) and the test list."""
    from claus.data import safe_load

    src = Path(source)
    data = safe_load(src / "pyannot_with_class_names.pkl")
    test = [ln.split()[0] for ln in (src / "testlist01.txt").read_text().splitlines() if ln]
    return data, test


def _pick(names: Sequence[str], n: int) -> list[str]:
    """The first n names (sorted) of different UCF-101 clip groups (`_gNN_`), then any."""
    names = sorted(names)
    out, groups = [], set()
    for name in names:
        g = name.rsplit("_", 2)[-2]
        if g not in groups and len(out) < n:
            out.append(name)
            groups.add(g)
    out += [x for x in names if x not in out][: n - len(out)]
    return sorted(out)


def _cut(rec: dict, max_frames: int | None, label_of: dict[int, int]) -> tuple[dict, int]:
    """(record, first kept frame): a pyannot record cut to `max_frames` frames from a little
    before its first tube, in the record's own types; labels renumbered through `label_of`."""
    numf = int(rec["numf"])
    annots = rec["annotations"]
    s0 = 0 if max_frames is None else max(0, min(int(a["sf"]) for a in annots) - 4)
    s1 = numf if max_frames is None else min(numf, s0 + max_frames)
    out = []
    for a in annots:
        sf, ef = max(int(a["sf"]), s0), min(int(a["ef"]), s1)
        if ef <= sf:
            continue  # the tube lies outside the window
        boxes = np.asarray(a["boxes"])[sf - int(a["sf"]) : ef - int(a["sf"])]
        out.append({**a, "label": label_of[int(a["label"])], "sf": sf - s0, "ef": ef - s0,
                    "boxes": boxes.copy()})
    return {**rec, "numf": type(rec["numf"])(s1 - s0), "label": label_of[int(rec["label"])],
            "annotations": out}, s0


def _ucf_tubes(rec: dict) -> list[tuple[int, int, np.ndarray]]:
    """A pyannot record's tubes in claus edges, through the reader's own conversion of the
    1-based x, y, w, h boxes (`ucf24_xywh_to_edges`), clipped to 320×240 as it clips them."""
    from claus.data.dataset import clip_boxes
    from claus.data.readers import ucf24_xywh_to_edges

    return [
        (int(a["label"]), int(a["sf"]), clip_boxes(ucf24_xywh_to_edges(a["boxes"]), 320, 240)[0])
        for a in rec["annotations"]
    ]


def render_ucf24(
    dst: str | os.PathLike,
    n_videos: tuple[int, int] = (2, 1),
    classes: Sequence[str] = UCF24_CLASSES,
    *,
    max_frames: int | None = 24,
    frames: str = "images",
    all_classes: bool = False,
    source: str | os.PathLike = UCF24_SHARED,
) -> Rendered:
    """UCF-101-24 in its released layout, from a subset of the real annotations.

    Args:
        dst: the dataset folder to write (created).
        n_videos: (train, test) videos per class, taken in name order from different clip
            groups where possible (deterministic).
        classes: UCF-101-24 class names.
        max_frames: frames kept per video, from 4 frames before its first tube (tubes outside
            the window are dropped, the others cut); None keeps whole videos.
        frames: "images" (`rgb-images/<video>/%05d.jpg`, 320×240) or "videos"
            (`videos/<video>.avi`, decoded by PyAV).
        all_classes: keep the real 24-class list and labels (default: only `classes`, labels
            renumbered 0..len(classes)-1).
        source: the folder holding the real `pyannot_with_class_names.pkl` and `testlist01.txt`.

    Returns:
        `Rendered` with dataset "ucf101-24", root = dst.
    """
    t0 = _clock()
    if frames not in ("images", "videos"):
        raise ValueError(f"frames must be 'images' or 'videos', got {frames!r}")
    data, testlist = ucf24_annotations(Path(source))
    real = [str(c) for c in data["classes"]]
    unknown = [c for c in classes if c not in real]
    if unknown:
        raise ValueError(f"not UCF-101-24 classes: {unknown}; choices: {real}")
    keep = real if all_classes else list(classes)
    label_of = {real.index(c): keep.index(c) for c in classes}
    db = data["db"]
    keys = {str(k): k for k in db}  # the real keys are numpy.str_: keep them
    train_all, test_all = set(map(str, data["trainvideos"])), set(testlist)
    chosen: dict[str, str] = {}
    for c in classes:
        mine = [k for k in keys if k.split("/")[0] == c]
        for split, pool, n in (("train", train_all, n_videos[0]), ("test", test_all, n_videos[1])):
            chosen.update((v, split) for v in _pick([k for k in mine if k in pool], n))
    cuts = {v: _cut(db[keys[v]], max_frames, label_of) for v in sorted(chosen)}
    sub = {keys[v]: rec for v, (rec, _) in cuts.items()}

    root = Path(dst)
    root.mkdir(parents=True, exist_ok=True)
    doc = {"db": sub, "trainvideos": [v for v in sorted(chosen) if chosen[v] == "train"],
           "classes": keep}
    (root / "pyannot_with_class_names.pkl").write_bytes(pickle.dumps(doc, protocol=3))
    (root / "testlist01.txt").write_text(
        "".join(f"{v}\n" for v in sorted(chosen) if chosen[v] == "test")
    )
    videos = {}
    for i, (key, rec) in enumerate(sub.items()):
        name, numf = str(key), int(rec["numf"])
        tubes = _ucf_tubes(rec)
        pixels = _frames(tubes, numf, (240, 320), (0, i))
        if frames == "images":
            src = root / "rgb-images" / name
            _write_images(src, pixels, "jpg")
            src = src / "{:05d}.jpg"
        else:
            src = root / "videos" / f"{name}.avi"
            _write_video(src, pixels, (240, 320))
        videos[name] = RenderedVideo(name, int(rec["label"]), chosen[name], numf, tubes, str(src),
                                     offset=cuts[name][1])
    return Rendered("ucf101-24", root, keep, videos, (240, 320), seconds=_clock() - t0)


# ------------------------------------------------------------------ generated videos


def _track(rng: np.random.Generator, label: int, n: int, size: tuple[int, int]) -> np.ndarray:
    """(n, 4) edge boxes of one actor: a person-shaped box moving in a class-specific way
    (0: walks across, 1: bobs up and down, 2: grows, ...), fully inside the frame."""
    H, W = size
    h = float(rng.uniform(0.45, 0.7)) * H
    w = float(rng.uniform(0.2, 0.35)) * W
    t = np.linspace(0, 1, n)
    x0 = float(rng.uniform(0, W - w))
    y0 = float(rng.uniform(0, H - h))
    kind = label % 3
    if kind == 0:
        x = x0 + (W - w - x0) * t * float(rng.uniform(0.3, 1.0))
        y, s = np.full(n, y0), np.ones(n)
    elif kind == 1:
        x = np.full(n, x0)
        y = y0 * (0.5 + 0.5 * np.cos(2 * np.pi * 2 * t))
        s = np.ones(n)
    else:
        x, y, s = np.full(n, x0), np.full(n, y0), 0.7 + 0.3 * t
    boxes = np.stack([x, y, x + w * s, y + h * s], axis=1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, W)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, H)
    return np.round(boxes, 1).astype(np.float32)


def _specs(
    classes: Sequence[str],
    n_videos: tuple[int, int],
    size: tuple[int, int],
    frame_range: tuple[int, int],
    seed: int,
    *,
    partial: bool,
) -> list[RenderedVideo]:
    """Deterministic video descriptions: n_videos (train, test) per class, one actor per video
    over the whole video, or (`partial`) every other video with its actor over the middle part
    only and every third with a second actor over the second half."""
    out = []
    for c, cname in enumerate(classes):
        for k in range(sum(n_videos)):
            rng = np.random.default_rng([seed, c, k])
            n = int(rng.integers(frame_range[0], frame_range[1] + 1))
            split = "train" if k < n_videos[0] else "test"
            start, end = (0, n) if not (partial and k % 2) else (n // 6, n - n // 6)
            tubes = [(c, start, _track(rng, c, end - start, size))]
            if partial and k % 3 == 2:
                tubes.append((c, n // 2, _track(rng, c, n - n // 2, size)))
            out.append(RenderedVideo(f"{cname}/{cname}_{k:02d}", c, split, n, tubes))
    return out


def _act_rows(start: int, boxes: np.ndarray) -> np.ndarray:
    """An ACT `gttubes` array (n, 5): frame (1-based), x1, y1, x2, y2, from a claus tube (0-based
    start, edge boxes). ACT/MOC files hold inclusive pixel boxes (x2 = last covered column,
    MOC-Detector's ACT_utils: +1 in areas), hence edges - 1: the one place to change if the
    convention is settled otherwise."""
    fr = np.arange(start, start + len(boxes), dtype=np.float32)[:, None] + 1
    b = boxes.astype(np.float32).copy()
    b[:, 2:] -= 1.0
    return np.concatenate([fr, b], axis=1)


def _jhmdb_name(cname: str, k: int) -> str:
    """J-HMDB-like video names: `<class>/<source>_<class>_<tags>_<k>`."""
    return f"{cname}/Clip{k:02d}_{cname}_u_nm_np1_fr_med_{k}"


def render_jhmdb(
    dst: str | os.PathLike,
    n_videos: int = 4,
    classes: Sequence[str] = JHMDB_CLASSES,
    *,
    size: tuple[int, int] = (60, 80),
    frame_range: tuple[int, int] = (15, 28),
    masks: bool | None = None,
    split: int = 1,
    seed: int = 0,
) -> Rendered:
    """J-HMDB-21's ACT/MOC layout: `JHMDB-GT.pkl`, `Frames/<class>/<video>/%05d.png`,
    `puppet_mask/<class>/<video>/puppet_mask.mat`.

    Each video has one actor over all its frames (as in J-HMDB). Splits: video k of a class is
    a test video of split s when k % 3 == s - 1, so with n_videos >= 3 every split has train
    and test videos of every class.

    Args:
        dst: the dataset folder to write (created).
        n_videos: videos per class.
        classes: class names (the pickle's `labels`).
        size: (height, width) of the frames (the pickle's `resolution`).
        frame_range: frame counts are drawn from this range (J-HMDB: 15-40).
        masks: write puppet masks (needs scipy); None: when scipy is installed.
        split: the split `Rendered` describes (1-3).
        seed: drawing seed.

    Returns:
        `Rendered` with dataset "jhmdb-21", root = dst, the videos' splits of `split`.
    """
    t0 = _clock()
    root = Path(dst)
    specs = _specs(classes, (n_videos, 0), size, frame_range, seed, partial=False)
    for i, s in enumerate(specs):
        s.name = _jhmdb_name(classes[s.label], i % n_videos)
    if masks is None:
        try:
            import scipy.io  # noqa: F401
        except ImportError:
            masks = False
        else:
            masks = True
    tests = [[s.name for i, s in enumerate(specs) if i % n_videos % 3 == sp] for sp in range(3)]
    gt = {
        "labels": list(classes),
        "gttubes": {s.name: {s.label: [_act_rows(st, b) for _, st, b in s.tubes]} for s in specs},
        "nframes": {s.name: s.num_frames for s in specs},
        "train_videos": [[s.name for s in specs if s.name not in t] for t in tests],
        "test_videos": tests,
        "resolution": {s.name: size for s in specs},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "JHMDB-GT.pkl").write_bytes(pickle.dumps(gt, protocol=2))
    videos = {}
    for i, s in enumerate(specs):
        folder = root / "Frames" / s.name
        _write_images(folder, _frames(s.tubes, s.num_frames, size, (seed, 1, i)), "png")
        if masks:
            from scipy.io import savemat

            (root / "puppet_mask" / s.name).mkdir(parents=True, exist_ok=True)
            savemat(root / "puppet_mask" / s.name / "puppet_mask.mat",
                    {"part_mask": _mask(s.tubes, s.num_frames, size)}, do_compression=True)
        s.source = str(folder / "{:05d}.png")
        s.split = "test" if s.name in tests[split - 1] else "train"
        videos[s.name] = s
    return Rendered("jhmdb-21", root, list(classes), videos, size, split, _clock() - t0)


def _custom_doc(name: str, classes: Sequence[str], specs, size, fields) -> dict:
    H, W = size
    vids = []
    for s in specs:
        vids.append({
            "name": s.name, "label": s.label, "split": s.split, "group": s.name.split("/")[0],
            "num_frames": s.num_frames, "width": W, "height": H, **fields[s.name],
            "tubes": [{"label": lab, "start": st, "boxes": b.tolist()} for lab, st, b in s.tubes],
        })
    return {"format": "claus.dataset", "version": 1, "name": name, "classes": list(classes),
            "videos": vids}


def render_custom(
    dst: str | os.PathLike,
    n_videos: tuple[int, int] = (3, 2),
    classes: Sequence[str] = CUSTOM_CLASSES,
    *,
    size: tuple[int, int] = (60, 80),
    frame_range: tuple[int, int] = (16, 30),
    seed: int = 0,
) -> Rendered:
    """A claus dataset JSON file (`dst/dataset.json`) with image folders `dst/frames/<video>/`.

    Videos: n_videos (train, test) per class; some with an actor over part of the video only,
    some with two actors; the second video of every class numbers its files from 0
    (`first_frame: 0`), the others from 1, as JPEG.

    Returns:
        `Rendered` with dataset "custom", root = the JSON file.
    """
    t0 = _clock()
    root = Path(dst)
    specs = _specs(classes, n_videos, size, frame_range, seed, partial=True)
    fields = {}
    for i, s in enumerate(specs):
        first = 0 if s.name.endswith("_01") else 1
        _write_images(root / "frames" / s.name, _frames(s.tubes, s.num_frames, size, (seed, 2, i)),
                      "jpg", first)
        s.source, s.first_frame = str(root / "frames" / s.name / "{:05d}.jpg"), first
        fields[s.name] = {"frames": f"frames/{s.name}/{{:05d}}.jpg", "first_frame": first}
    path = root / "dataset.json"
    path.write_text(json.dumps(_custom_doc("real-custom", classes, specs, size, fields)))
    return Rendered("custom", path, list(classes), {s.name: s for s in specs}, size,
                    seconds=_clock() - t0)


def render_videos(
    dst: str | os.PathLike,
    n_videos: tuple[int, int] = (3, 2),
    classes: Sequence[str] = CUSTOM_CLASSES,
    *,
    size: tuple[int, int] = (60, 80),
    frame_range: tuple[int, int] = (16, 30),
    seed: int = 0,
) -> Rendered:
    """The videos of `render_custom` (same arguments, same boxes and pixels) as video files,
    no extracted frames: `dst/videos/<video>.avi` (MPEG-4 part 2) for even positions,
    `.mp4` (H.264 with B-frames) for odd ones, listed in `dst/dataset.json` (`"video"`).
    Needs PyAV.

    Returns:
        `Rendered` with dataset "custom", root = the JSON file.
    """
    t0 = _clock()
    root = Path(dst)
    specs = _specs(classes, n_videos, size, frame_range, seed, partial=True)
    fields = {}
    for i, s in enumerate(specs):
        rel = f"videos/{s.name}.{'avi' if i % 2 == 0 else 'mp4'}"
        _write_video(root / rel, _frames(s.tubes, s.num_frames, size, (seed, 2, i)), size)
        s.source = str(root / rel)
        fields[s.name] = {"video": rel}
    path = root / "dataset.json"
    path.write_text(json.dumps(_custom_doc("real-videos", classes, specs, size, fields)))
    return Rendered("custom", path, list(classes), {s.name: s for s in specs}, size,
                    seconds=_clock() - t0)


# ------------------------------------------------------------------ I3D weights

# piergiaj/pytorch-i3d InceptionI3d: (name, in channels, branch widths b0, b1a, b1b, b2a, b2b,
# b3b) of every inception block, Mixed_5b/5c included (beyond claus's cut at Mixed_4f).
_I3D_MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


def i3d_units() -> list[tuple[str, int, int, tuple[int, int, int]]]:
    """(module name, in channels, out channels, kernel) of every Conv3d+BN `Unit3D` of
    pytorch-i3d's InceptionI3d, in its order (logits excluded)."""
    units = [
        ("Conv3d_1a_7x7", 3, 64, (7, 7, 7)),
        ("Conv3d_2b_1x1", 64, 64, (1, 1, 1)),
        ("Conv3d_2c_3x3", 64, 192, (3, 3, 3)),
    ]
    one, three = (1, 1, 1), (3, 3, 3)
    for name, cin, o in _I3D_MIXED:
        units += [
            (f"{name}.b0", cin, o[0], one),
            (f"{name}.b1a", cin, o[1], one),
            (f"{name}.b1b", o[1], o[2], three),
            (f"{name}.b2a", cin, o[3], one),
            (f"{name}.b2b", o[3], o[4], three),
            (f"{name}.b3b", cin, o[5], one),
        ]
    return units


def write_i3d_checkpoint(
    path: str | os.PathLike, num_classes: int = 400, *, seed: int = 0, bn_counters: bool = False
) -> dict:
    """A random pytorch-i3d `InceptionI3d` state dict saved with `torch.save`, as its
    `rgb_imagenet.pt` is: `<unit>.conv3d.weight` (no bias), `<unit>.bn.{weight, bias,
    running_mean, running_var}`, and `logits.conv3d.{weight, bias}` for num_classes outputs.

    Args:
        path: the file to write.
        num_classes: logits outputs (400 for the Kinetics checkpoints).
        seed: values seed; convolutions He-scaled, BatchNorm near identity.
        bn_counters: also write `bn.num_batches_tracked` (the released files, saved by
            PyTorch < 0.4, have none).

    Returns:
        The state dict written ({name: tensor}).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for name, cin, cout, k in i3d_units():
        fan_in = cin * k[0] * k[1] * k[2]
        sd[f"{name}.conv3d.weight"] = torch.randn(cout, cin, *k, generator=g) * (2 / fan_in) ** 0.5
        sd[f"{name}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_var"] = 1 + 0.1 * torch.rand(cout, generator=g)
        if bn_counters:
            sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(1000)
    sd["logits.conv3d.weight"] = 0.01 * torch.randn(num_classes, 1024, 1, 1, 1, generator=g)
    sd["logits.conv3d.bias"] = torch.zeros(num_classes)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return sd


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def real_ucf24(tmp_path_factory) -> Rendered:
    """`render_ucf24` defaults: 3 classes × (2 train + 1 test) real videos, 24 frames each."""
    if not (UCF24_SHARED / "pyannot_with_class_names.pkl").is_file():
        pytest.skip(f"shared UCF-101-24 annotations {UCF24_SHARED} are absent")
    return render_ucf24(tmp_path_factory.mktemp("ucf101-24"))


@pytest.fixture(scope="session")
def real_jhmdb(tmp_path_factory) -> Rendered:
    """`render_jhmdb` defaults: 3 classes × 4 videos, 80×60, split 1 (2 train + 2 test each)."""
    return render_jhmdb(tmp_path_factory.mktemp("jhmdb-21"))


@pytest.fixture(scope="session")
def real_custom(tmp_path_factory) -> Rendered:
    """`render_custom` defaults: 3 classes × (3 train + 2 test), 80×60 JPEG folders."""
    return render_custom(tmp_path_factory.mktemp("custom"))


@pytest.fixture(scope="session")
def real_videos(tmp_path_factory) -> Rendered:
    """`render_videos` defaults (the videos of `real_custom` as .avi/.mp4); skips without PyAV."""
    pytest.importorskip("av")
    return render_videos(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="session")
def i3d_weights(tmp_path_factory) -> Path:
    """A random pytorch-i3d checkpoint (400 logits, no BN counters, like rgb_imagenet.pt)."""
    path = tmp_path_factory.mktemp("i3d") / "rgb_random.pt"
    write_i3d_checkpoint(path)
    return path
