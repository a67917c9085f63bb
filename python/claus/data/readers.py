"""Readers for the public benchmarks: UCF-101-24 and J-HMDB-21 as commonly released.

All annotation pickles go through the restricted unpickler (`safe_pickle`). Readers convert to
claus conventions at the boundary: 0-based frames, [x1, y1, x2, y2] float32 boxes with x2/y2
the right/bottom edges; boxes outside the frame are clipped and counted (one warning per file).

Layouts understood:

* UCF-101-24 (`load_ucf24`): `pyannot_with_class_names.pkl` ({db, trainvideos, classes}) or
  `pyannot.pkl` (the db alone), db = {video: {label, numf, annotations: [{label, sf, ef
  (exclusive), boxes (n, 4) x, y, w, h}]}}; `testlist01.txt`; frame f of a video is
  `rgb-images/<video>/{f+1:05d}.jpg`, or `videos/<video>.avi` decoded with PyAV.
  Also the ACT/MOC `UCF101v2-GT.pkl` (see `load_act_gt`).
* J-HMDB-21 (`load_jhmdb`): ACT/MOC `JHMDB-GT.pkl`, `Frames/<class>/<video>/{f+1:05d}.png`,
  optional `puppet_mask/<class>/<video>/puppet_mask.mat` (key `part_mask`, H×W×T).

Box conventions of the two formats (what the code that wrote and scores them does):

* ACT/MOC ground-truth pickles: x1, y1, x2, y2 are 0-based *inclusive* pixel indices, x2 the
  last covered column. The ACT tube docstring says "frame number are 1-indexed, coordinates
  are 0-indexed", and every area there adds one: area2d = (x2 - x1 + 1)(y2 - y1 + 1),
  overlap2d = min(x2) + 1 - max(x1), iou2d, iou3d and nms2d likewise (MCG-NJU/MOC-Detector
  src/ACT_utils/ACT_utils.py, MOC's copy of the ACT-detector utilities; frameAP/videoAP in
  src/ACT.py score the pickle's boxes with them unchanged). Detections are clipped to
  [0, width - 1] x [0, height - 1] before scoring (src/detector/normal_moc_det.py
  post_process) and the training crop keeps pixels x1..x2, y1..y2 (src/ACT_utils/ACT_aug.py
  crop_image). The script that wrote the pickles is not public; claus takes the format as the
  code that scores it reads it. `inclusive_to_edges` converts on reading, `VideoDataset.act_gt`
  converts back.
* UCF-101-24 pyannot pickles (gurkirt/corrected-UCF101-Annots, a Python export of the MATLAB
  `finalAnnots.mat`, cf. its convertMatToPy.py; the export made frames 0-based, `ef`
  exclusive, but left the boxes as they were): x, y are the 1-based top-left pixel and w, h
  the size in pixels. The author's evaluation builds detection boxes 1-based (+1, clipped to
  [1, 320] x [1, 240]) and compares them with the ground truth as [x1, y1, x2 - x1 + 1,
  y2 - y1 + 1] (gurkirt/realtime-action-detection online-tubes/frameAp.m compute_spatial_iou;
  also evaluation/compute_spatio_temporal_iou.m adds 1 to detections), and the author's later
  loader subtracts 1 from all four numbers, then adds w, h: [x - 1, y - 1, x + w - 2,
  y + h - 2] (gurkirt/3D-RetinaNet data/datasets.py get_box). The annotations agree: over
  all 573,862 boxes of pyannot_with_class_names.pkl x, y >= 1 (never 0; 6,557 boxes sit at
  x = 1 and 22,708 at y = 1, the frame's left/top border) and x + w <= 320, y + h <= 240. So
  a box covers 0-based columns x - 1 .. x + w - 2: ACT-inclusive [x - 1, y - 1, x + w - 2,
  y + h - 2], claus edges [x - 1, y - 1, x - 1 + w, y - 1 + h] (`ucf24_xywh_to_edges`).
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from .dataset import Tube, Video, VideoDataset, inclusive_to_edges, usable_tubes, warn_boxes
from .frames import FrameSource, ImageFolderFrames, VideoFileFrames
from .safe_pickle import safe_load

log = logging.getLogger(__name__)

__all__ = [
    "load_ucf24",
    "load_act_gt",
    "load_jhmdb",
    "ucf24_xywh_to_edges",
    "UCF24_FRAME_SIZE",
]

# Every UCF-101 video is 320×240; the pyannot pickles do not record it.
UCF24_FRAME_SIZE = (240, 320)


class AnnotationError(ValueError):
    """An annotation file is empty, of the wrong format, or inconsistent (names file and field)."""


def ucf24_xywh_to_edges(boxes: np.ndarray) -> np.ndarray:
    """UCF-101-24 pyannot boxes → claus edge boxes (see the module docstring for the evidence).

    Args:
        boxes: (n, 4) x, y (1-based top-left pixel), w, h (pixels), any integer or real dtype
            (the pickles hold uint8/uint16, so this casts before adding).

    Returns:
        (n, 4) float32 [x - 1, y - 1, x - 1 + w, y - 1 + h].
    """
    b = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    b[:, :2] -= 1.0
    b[:, 2:] += b[:, :2]
    return b


def _frame_source(
    root: Path | None, name: str, images: str, ext: str, n: int
) -> FrameSource | None:
    """Image folder when extracted frames exist, else a video file, else None."""
    if root is None:
        return None
    folder = root / images / name
    if folder.is_dir():
        return ImageFolderFrames(str(folder / ("{:05d}." + ext)), first=1, num_frames=n)
    for vext in (".avi", ".mp4", ".mkv", ".webm"):
        vid = root / "videos" / (name + vext)
        if vid.is_file():
            return VideoFileFrames(vid, num_frames=n)
    # A missing folder is only an error when frames are read: annotation-only use is valid.
    return ImageFolderFrames(str(folder / ("{:05d}." + ext)), first=1, num_frames=n)


def _read_list(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            # UCF-101 split files may carry a class index and the .avi suffix: "Class/v_x.avi 1".
            names.append(line.split()[0].removesuffix(".avi"))
    return names


def load_ucf24(
    root: str | os.PathLike | None = None,
    *,
    annotations: str | os.PathLike | None = None,
    testlist: str | os.PathLike | None = None,
    frames_root: str | os.PathLike | None = None,
    frame_size: tuple[int, int] = UCF24_FRAME_SIZE,
) -> VideoDataset:
    """UCF-101-24 from the pyannot pickles (or `UCF101v2-GT.pkl`, dispatched to `load_act_gt`).

    Args:
        root: the dataset folder; annotation file, test list and `rgb-images/` are looked up in it.
        annotations: explicit annotation pickle (default: the first of
            `pyannot_with_class_names.pkl`, `pyannot.pkl`, `UCF101v2-GT.pkl` under root).
        testlist: explicit `testlist01.txt` (default: under root; required for `pyannot.pkl`
            and used in preference to nothing for `pyannot_with_class_names.pkl`).
        frames_root: where `rgb-images/` or `videos/` live (default: root).
        frame_size: (height, width) of the original frames.

    Returns:
        A `VideoDataset` with splits "train" and "test"; boxes converted from 1-based x, y and
        sizes w, h to edges x1 = x - 1, y1 = y - 1, x2 = x1 + w, y2 = y1 + h
        (`ucf24_xywh_to_edges`).
    """
    root = Path(root) if root is not None else None
    annotations = Path(annotations) if annotations is not None else _ucf24_annotations(root)
    frames_root = Path(frames_root) if frames_root is not None else (root or annotations.parent)
    data = safe_load(annotations)
    if isinstance(data, dict) and "gttubes" in data:
        return load_act_gt(
            annotations,
            name="ucf101-24",
            frames_root=frames_root,
            images="rgb-images",
            ext="jpg",
            data=data,
        )
    where = str(annotations)
    db, trainvideos, classes = _pyannot_db(data, where)
    tl = Path(testlist) if testlist is not None else (root / "testlist01.txt" if root else None)
    train_set, test = _ucf24_splits(db, trainvideos, tl, where)

    H, W = frame_size
    videos, clipped, dropped = [], 0, 0
    for name in sorted(db):
        split = "train" if name in train_set else ("test" if test is None or name in test else None)
        label, numf, tubes, c, d = _pyannot_video(db[name], name, where, W, H)
        clipped += c
        dropped += d
        if split is None:
            continue  # neither list names it
        videos.append(
            Video(name, label, numf, H, W, split, tubes, group=_ucf_group(name),
                  source=_frame_source(frames_root, name, "rgb-images", "jpg", numf))
        )
    warn_boxes(where, clipped, dropped)
    return VideoDataset("ucf101-24", classes, videos)


def _ucf24_annotations(root: Path | None) -> Path:
    """The first annotation file of UCF-101-24 found in `root`."""
    if root is None:
        raise ValueError("load_ucf24: give the dataset folder or the annotation file")
    for cand in ("pyannot_with_class_names.pkl", "pyannot.pkl", "UCF101v2-GT.pkl"):
        if (root / cand).is_file():
            return root / cand
    raise FileNotFoundError(
        f"{root}: no UCF-101-24 annotation file (pyannot_with_class_names.pkl, "
        "pyannot.pkl or UCF101v2-GT.pkl)"
    )


def _pyannot_db(data, where: str) -> tuple[dict, list | None, list[str]]:
    """(database {video: record}, train list or None, class names) of a pyannot pickle."""
    if isinstance(data, dict) and "db" in data:
        db, trainvideos, classes = data["db"], data.get("trainvideos"), data.get("classes")
    elif (
        isinstance(data, dict)
        and data
        and all(isinstance(v, dict) and "annotations" in v for v in list(data.values())[:5])
    ):
        db, trainvideos, classes = data, None, None
    else:
        raise AnnotationError(
            f"{where}: not a UCF-101-24 pyannot file (expected a dict with 'db' "
            "or {video: {label, numf, annotations}})"
        )
    if not isinstance(db, dict) or not db:
        raise AnnotationError(f"{where}: the annotation database is empty")
    db = {str(k): v for k, v in db.items()}
    if classes is None:
        classes = sorted({k.split("/")[0] for k in db})
    return db, trainvideos, [str(c) for c in classes]


def _ucf24_splits(db: dict, trainvideos: list | None, tl: Path | None,
                  where: str) -> tuple[set[str], set[str] | None]:
    """(train videos, test videos or None: every video not in the train list) of UCF-101-24.

    The pickle's train list wins over the test list for train; videos a list names but the
    database lacks are left out with a warning."""
    test = set(_read_list(tl)) if tl is not None and tl.is_file() else None
    if test is None and trainvideos is None:
        raise FileNotFoundError(f"{where}: pyannot.pkl has no train list; give testlist01.txt")
    if trainvideos is not None:
        train = [str(t) for t in trainvideos]
        missing = [t for t in train if t not in db]
        if missing:
            warnings.warn(
                f"{where}: {len(missing)} videos in the train list have no annotation and "
                f"are left out: {missing}",
                stacklevel=3,
            )
        train_set = set(train) & set(db)
    else:
        train_set = set(db) - test
    if test is not None:
        unknown = sorted(test - set(db))
        if unknown:
            warnings.warn(
                f"{tl}: {len(unknown)} test videos have no annotation and are left out: "
                f"{unknown[:10]}",
                stacklevel=3,
            )
    return train_set, test


def _pyannot_video(rec, name: str, where: str, W: int, H: int) -> tuple[int, int, list, int, int]:
    """(label, frames, usable tubes, boxes clipped, boxes dropped) of one pyannot record."""
    try:
        numf = int(rec["numf"])
        label = int(rec["label"])
        annots = rec["annotations"]
    except (KeyError, TypeError, ValueError) as e:
        raise AnnotationError(f"{where}: video {name!r}: missing or bad field ({e})") from e
    tubes, clipped, dropped = [], 0, 0
    for k, a in enumerate(annots):
        sf, ef = int(a["sf"]), int(a["ef"])
        b = np.asarray(a["boxes"])
        if b.ndim != 2 or b.shape[1] != 4:
            raise AnnotationError(
                f"{where}: video {name!r} tube {k}: boxes shape {b.shape}, expected (n, 4)"
            )
        if len(b) != ef - sf:
            raise AnnotationError(
                f"{where}: video {name!r} tube {k}: {len(b)} boxes but "
                f"ef - sf = {ef} - {sf} = {ef - sf}"
            )
        kept, c, d = usable_tubes(int(a["label"]), sf, ucf24_xywh_to_edges(b), W, H,
                                  f"{where}: video {name!r} tube {k}")
        tubes += kept
        clipped += c
        dropped += d
    return label, numf, tubes, clipped, dropped


def _ucf_group(name: str) -> str | None:
    # "Class/v_Class_g08_c01" → "Class/g08": UCF-101's clip groups (same actor and scene).
    stem = name.rsplit("/", 1)[-1]
    parts = stem.split("_")
    for p in parts:
        if len(p) == 3 and p[0] == "g" and p[1:].isdigit():
            return f"{name.split('/')[0]}/{p}"
    return None


def _act_tubes(
    where: str, name: str, gt: dict, numf: int, H: int, W: int
) -> tuple[list[Tube], int, int]:
    tubes, clipped, dropped = [], 0, 0
    for label in sorted(gt, key=int):
        for k, arr in enumerate(gt[label]):
            a = np.asarray(arr, dtype=np.float64)
            if a.ndim != 2 or a.shape[1] != 5 or len(a) == 0:
                raise AnnotationError(
                    f"{where}: video {name!r} label {label} tube {k}: shape {a.shape}, "
                    "expected (n, 5) frame, x1, y1, x2, y2"
                )
            fr = a[:, 0].astype(np.int64) - 1  # ACT frames are 1-based
            order = np.argsort(fr, kind="stable")
            fr, a = fr[order], a[order]
            # ACT tubes are contiguous; a gap splits the tube rather than inventing boxes.
            cuts = np.flatnonzero(np.diff(fr) != 1) + 1
            for seg_f, seg_a in zip(np.split(fr, cuts), np.split(a, cuts), strict=True):
                if len(np.unique(seg_f)) != len(seg_f):
                    raise AnnotationError(
                        f"{where}: video {name!r} label {label} tube {k}: repeated frames"
                    )
                kept, c, d = usable_tubes(int(label), int(seg_f[0]),
                                          inclusive_to_edges(seg_a[:, 1:5]), W, H,
                                          f"{where}: video {name!r} label {label} tube {k}")
                tubes += kept
                clipped += c
                dropped += d
            if len(cuts):
                warnings.warn(
                    f"{where}: video {name!r} label {label} tube {k} has gaps; split into "
                    f"{len(cuts) + 1} tubes",
                    stacklevel=3,
                )
    if any(t.end > numf for t in tubes):
        raise AnnotationError(f"{where}: video {name!r}: a tube ends after frame {numf} (nframes)")
    return tubes, clipped, dropped


def load_act_gt(
    annotations: str | os.PathLike,
    *,
    name: str | None = None,
    split: int = 1,
    frames_root: str | os.PathLike | None = None,
    images: str | None = None,
    ext: str | None = None,
    data: dict | None = None,
    masks: bool = False,
) -> VideoDataset:
    """An ACT/MOC ground-truth pickle (`UCF101v2-GT.pkl`, `JHMDB-GT.pkl`).

    The file holds labels, gttubes {video: {label: [array (n, 5): frame (1-based), x1, y1, x2,
    y2]}}, nframes, train_videos / test_videos (one list per split), resolution {video: (h, w)}.
    Boxes are 0-based inclusive pixel indices (module docstring) and become claus edges
    [x1, y1, x2 + 1, y2 + 1] (`inclusive_to_edges`); `VideoDataset.act_gt` writes them back.

    Args:
        annotations: the pickle.
        name: dataset name (default from the file name: ucf101-24 / jhmdb-21).
        split: 1-based split number (J-HMDB has 3, UCF101v2 one).
        frames_root: folder holding the frame images (default: the pickle's folder).
        images, ext: image sub-folder and extension (default `rgb-images`/jpg for UCF,
            `Frames`/png for J-HMDB).
        data: the already-loaded pickle (internal).
        masks: attach J-HMDB puppet masks when `puppet_mask/` exists.
    """
    annotations = Path(annotations)
    where = str(annotations)
    if data is None:
        data = safe_load(annotations)
    jhmdb = "jhmdb" in annotations.name.lower()
    name = name or ("jhmdb-21" if jhmdb else "ucf101-24")
    images = images or ("Frames" if jhmdb else "rgb-images")
    ext = ext or ("png" if jhmdb else "jpg")
    for key in ("labels", "gttubes", "nframes", "train_videos", "test_videos", "resolution"):
        if not isinstance(data, dict) or key not in data:
            raise AnnotationError(
                f"{where}: not an ACT ground-truth pickle (missing field {key!r})"
            )
    nsplits = len(data["train_videos"])
    if not 1 <= split <= nsplits:
        raise ValueError(f"{where}: unknown split {split}; this file has splits 1..{nsplits}")
    train = {str(v) for v in data["train_videos"][split - 1]}
    test = {str(v) for v in data["test_videos"][split - 1]}
    frames_root = Path(frames_root) if frames_root is not None else annotations.parent
    gttubes = {str(k): v for k, v in data["gttubes"].items()}
    nframes = {str(k): int(v) for k, v in data["nframes"].items()}
    res = {str(k): v for k, v in data["resolution"].items()}
    if not gttubes:
        raise AnnotationError(f"{where}: gttubes is empty")
    videos, clipped, dropped = [], 0, 0
    for vname in sorted(gttubes):
        if vname not in train and vname not in test:
            continue
        if vname not in nframes or vname not in res:
            raise AnnotationError(f"{where}: video {vname!r} lacks nframes or resolution")
        H, W = (int(x) for x in res[vname])
        tubes, c, d = _act_tubes(where, vname, gttubes[vname], nframes[vname], H, W)
        clipped += c
        dropped += d
        if masks:
            mp = frames_root / "puppet_mask" / vname / "puppet_mask.mat"
            if mp.is_file():
                for t in tubes:
                    t.mask_fn = _PuppetMask(str(mp), H, W)
        labels = {t.label for t in tubes}
        videos.append(
            Video(
                vname,
                min(labels) if labels else -1,
                nframes[vname],
                H,
                W,
                "train" if vname in train else "test",
                tubes,
                group=None,
                source=_frame_source(frames_root, vname, images, ext, nframes[vname]),
            )
        )
    warn_boxes(where, clipped, dropped)
    return VideoDataset(name, [str(x) for x in data["labels"]], videos)


@lru_cache(maxsize=8)
def _load_puppet(path: str) -> np.ndarray:
    try:
        from scipy.io import loadmat
    except ImportError as e:
        raise ImportError("J-HMDB puppet masks need scipy: pip install 'claus[jhmdb]'") from e
    try:
        m = loadmat(path)["part_mask"]
    except KeyError as e:
        raise AnnotationError(f"{path}: no 'part_mask' variable") from e
    except Exception as e:  # scipy raises several error types for corrupt .mat files
        raise AnnotationError(f"{path}: unreadable mask file ({e})") from e
    m = np.asarray(m)
    if m.ndim == 2:
        m = m[:, :, None]
    if m.ndim != 3:
        raise AnnotationError(f"{path}: part_mask has shape {m.shape}, expected H×W×T")
    return m


class _PuppetMask:
    """mask_fn for a J-HMDB tube: frame → (H, W) bool, read lazily (picklable for workers)."""

    def __init__(self, path: str, height: int, width: int):
        self.path, self.height, self.width = path, height, width

    def __call__(self, frame: int) -> np.ndarray:
        m = _load_puppet(self.path)
        if m.shape[:2] != (self.height, self.width):
            raise AnnotationError(
                f"{self.path}: mask size {m.shape[:2]} differs from the frame size "
                f"{(self.height, self.width)}"
            )
        # Some puppet masks have one frame fewer than the video; hold the last one.
        return m[:, :, min(int(frame), m.shape[2] - 1)] > 0


def load_jhmdb(
    root: str | os.PathLike,
    *,
    split: int = 1,
    annotations: str | os.PathLike | None = None,
    masks: bool = True,
) -> VideoDataset:
    """J-HMDB-21 from the ACT/MOC `JHMDB-GT.pkl` (splits 1–3) with optional puppet masks.

    Args:
        root: the folder holding `JHMDB-GT.pkl`, `Frames/` and (optionally) `puppet_mask/`.
        split: 1, 2 or 3.
        annotations: explicit pickle path.
        masks: attach the puppet masks (needs scipy) when `puppet_mask/` exists.
    """
    root = Path(root)
    ann = Path(annotations) if annotations is not None else root / "JHMDB-GT.pkl"
    return load_act_gt(
        ann, name="jhmdb-21", split=split, frames_root=root, images="Frames", ext="png", masks=masks
    )
