"""CVAT: export a round's requests as an image task; read "CVAT for images/video 1.1" XML back.

Export (`export_cvat`) writes a folder ready to upload as one CVAT image task::

    OUT/images/<video>/<frame:06d>.jpg   the requested frames (0-based numbers, as in claus)
    OUT/labels.json                      the label list ("Raw" in CVAT's label constructor)
    OUT/requests.jsonl                   the requests (see `claus.annotation.jsonl`)
    OUT/README.md                        how to create the task and bring the labels back

Each label has a `track` number attribute (default 0): boxes of one video with the same label
and track number are one actor, so claus interpolates between them.

With `encode` (`claus.select --format cvat --encode`) the requested videos are also written as
H.264 MP4 (`claus.annotation.encode`, reused across rounds) and the README gives the video
route: one CVAT video task per video, named after it, labelled with tracks (CVAT interpolates
between keyframes) and exported as "CVAT for video 1.1" (`read_cvat_video`).

Readers (format: https://docs.cvat.ai/docs/other/xml_format/):

* `read_cvat_images` — `<image name=... width= height=>` elements with `<box label= xtl= ytl=
  xbr= ybr=>`: the video and frame come from the image name (`.../<video>/<frame>.<ext>`; with
  `video=` a bare `<frame>.<ext>` name also works), coordinates are scaled from the image size
  to the video's. Every listed image is a frame the file answers for.
* `read_cvat_video` — one video task: `<track id= label=>` with `<box frame= outside= keyframe=
  xtl= ...>`. A track is its keyframes, as CVAT's own importer reads it; every requested frame
  gets the box CVAT draws there (`claus.annotation.tracks.CVAT`: linear between keyframes, held
  after the last one to the task's end, nothing from an `outside` keyframe to the next
  keyframe). Frame i of the task is video frame `start_frame + i·step` (`<start_frame>`,
  `<frame_filter>step=N` of the task meta), i < `<size>`. Coordinates are scaled from
  `<original_size>` to the video's (not for a video claus encoded, padded to an even size).
  The video is `video=`, else the task `<name>`, else the `<source>` file name. Every task frame
  is a frame the file answers for.
"""

from __future__ import annotations

import dataclasses
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

from ..data.faults import BadVideos
from ..data.frames import FrameReadError
from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..selection.strategies import Selection
from .encode import max_bad_share
from .jsonl import export_jsonl
from .pending import PendingRound, safe_relpath
from .tracks import CVAT, Keyframe, Track, track_boxes
from .types import AnnotationFileError, Annotations, ImportedBox

__all__ = ["cvat_labels", "export_cvat", "image_name", "read_cvat_images", "read_cvat_video"]

TRACK_ATTRIBUTE = "track"


def image_name(video: str, frame: int) -> str:
    """The exported image path of a frame: `<video>/<frame:06d>.jpg` (0-based frame)."""
    return f"{safe_relpath(video)}/{int(frame):06d}.jpg"


def cvat_labels(classes: list[str]) -> list[dict]:
    """CVAT's raw label list: one rectangle label per class, with the `track` attribute."""
    return [{"name": c, "type": "rectangle", "attributes": [
        {"name": TRACK_ATTRIBUTE, "mutable": False, "input_type": "number",
         "default_value": "0", "values": ["0", "999", "1"]}]} for c in classes]


def export_cvat(pending: PendingRound, out: str | Path, *, quality: int = 95,
                encode: str | Path | None = None, fps: float | None = None) -> Path:
    """Write the CVAT image-task folder of the waiting round (layout in the module docstring).

    Frames are read from the dataset's frame source (video file, image folder, array or frame
    store) and saved as JPEG at the source's size. With `encode` (a folder), the requested
    videos are encoded there too (`encode_videos`, at `fps`) and the README adds the video-task
    route. A video whose frames cannot be read is left out of the task (images, requests and
    videos) with a warning naming the file, and the README lists it (`claus.data.faults`);
    the export fails only past the run's `max_bad_share` or with no readable video left.
    Returns the folder.
    """
    from PIL import Image

    out = Path(out)
    ds = pending.dataset
    bad = BadVideos.of(ds, max_bad_share(pending))
    n = 0
    for req in pending.requests:
        try:
            frames = ds.read_frames(req.video, list(req.frames))
        except FrameReadError as e:  # read before writing: a video's images come whole or not
            bad.add(req.video, "export", e)
            continue
        for f, img in zip(req.frames, frames, strict=True):
            buf = io.BytesIO()
            # No chroma subsampling: small frames keep their colours at box edges.
            Image.fromarray(img).save(buf, "JPEG", quality=quality, subsampling=0)
            atomic_write_bytes(out / "images" / image_name(req.video, f), buf.getvalue())
            n += 1
    asked = pending
    pending = without_videos(pending, bad.names())
    if asked.requests and not pending.requests:
        raise bad.none_left(f"the {len(asked.requests)} requested videos")
    atomic_write_json(out / "labels.json", cvat_labels(ds.classes))
    export_jsonl(pending, out)
    text = _README.format(run=pending.run, round=pending.round, frames=n,
                          videos=len(pending.requests),
                          task=f"claus {pending.run} round {pending.round}")
    if encode is not None:
        from .encode import encode_videos

        encoded = encode_videos(pending, encode, fps=fps, bad=bad)
        listing = "\n".join(f"| `{e.video}` | `{e.path.resolve()}` | "
                            f"{', '.join(map(str, r.frames))} |"
                            for r in pending.requests if r.video in encoded
                            for e in [encoded[r.video]])
        text += _VIDEO_README.format(run=pending.run, folder=Path(encode).resolve(),
                                     listing=listing)
    if len(bad):
        text += _LEFT_OUT.format(run=pending.run, listing="\n".join(
            f"- `{b.name}`: {b.reason}" for b in bad.stage("export").values()))
    atomic_write_text(out / "README.md", text)
    return out


def without_videos(pending: PendingRound, videos: list[str]) -> PendingRound:
    """The waiting round with the requests of `videos` dropped (what an export leaves out)."""
    if not videos:
        return pending
    sel, drop = pending.selection, set(videos)
    kept = Selection(frames={k: v for k, v in sel.frames.items() if k not in drop},
                     scores={k: v for k, v in sel.scores.items() if k not in drop},
                     video_scores={k: v for k, v in sel.video_scores.items() if k not in drop},
                     clusters={k: v for k, v in sel.clusters.items() if k not in drop},
                     cost=sel.cost)
    return dataclasses.replace(pending, selection=kept)


_README = """# CVAT task: round {round} of {run}

{frames} frames of {videos} videos to label, in `images/<video>/<frame>.jpg` (frame numbers
are 0-based, as in claus).

1. Zip the images with their folders: `cd images && zip -r ../images.zip . && cd ..`.
2. In CVAT: Tasks → + → Create a new task. Name: `{task}`. Labels: open "Raw" and paste the
   content of `labels.json`. Select files: upload `images.zip`. Submit.
3. Label every image: a box around every actor, with its action class. Leave an image
   without boxes when nobody acts in it (claus records "no actor"). The `track` number links
   one actor across the frames of a video: keep 0 for a video's only actor, give other actors
   of the same video 1, 2, ...
4. Export: Actions → Export task dataset → "CVAT for images 1.1" (no images needed), unzip,
   and import `annotations.xml`:

       python -m claus.annotate --run {run} --file annotations.xml --format cvat-images
       python -m claus.train --resume {run}
"""

_VIDEO_README = """
## Or: label the videos, with tracks

The requested videos are in `{folder}` (H.264 MP4, frame i of a file is claus frame i; written
by `claus.select --encode`, reused by later rounds). CVAT interpolates boxes between the
keyframes of a track, so a track drawn once per actor gives a box on every frame it spans.

1. For each video below: Tasks → + → Create a new task. Name: the claus video name (exactly,
   e.g. `walk/g0003_c01`: claus finds the video by it). Labels: "Raw", paste `labels.json`.
   Select files: the video's file. Submit.
2. In the task, draw one track per actor (Track mode), with its class; add keyframes where it
   moves off the interpolated box, and switch the track "outside" where the actor leaves.
   Check the listed frames (CVAT's frame numbers, 0-based, are claus's): claus takes the box
   CVAT shows on each of them; a listed frame without a box is recorded as "no actor".
3. Export each task: Actions → Export task dataset → "CVAT for video 1.1", unzip, and import
   all the `annotations.xml` files at once:

       python -m claus.annotate --run {run} --file task1.xml task2.xml ... --format cvat-xml
       python -m claus.train --resume {run}

| video (task name) | file | frames to label |
|---|---|---|
{listing}
"""

_LEFT_OUT = """
## Left out: videos whose frames could not be read

{listing}

Their frames are not in this task (nor in `requests.jsonl`). Fix the files and export again,
or import the labels with `--allow-missing` to leave these frames unlabelled this round:

    python -m claus.annotate --run {run} --file annotations.xml --format cvat-images \\
        --allow-missing
"""


# ---------------------------------------------------------------------------- reading
def parse_xml(path: Path) -> ET.Element:
    """The root of an XML file; truncated or malformed files and entity declarations (which
    could expand without bound) are refused with the file named."""
    data = path.read_bytes()
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        raise AnnotationFileError(f"{path}: XML with a DOCTYPE/ENTITY declaration is refused")
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        raise AnnotationFileError(f"{path}: not well-formed XML ({e}); is the file complete "
                                  "(an export cut short)?") from None


def _num(el: ET.Element, key: str, path: Path, what: str) -> float:
    try:
        return float(el.attrib[key])
    except KeyError:
        raise AnnotationFileError(f"{path}: {what}: missing attribute {key!r}") from None
    except ValueError:
        raise AnnotationFileError(f"{path}: {what}: attribute {key}={el.attrib[key]!r} is not "
                                  "a number") from None


def _int_text(meta: ET.Element, tag: str, default: int | None, path: Path) -> int | None:
    el = meta.find(tag)
    if el is None or el.text is None or not el.text.strip():
        return default
    try:
        return int(el.text.strip())
    except ValueError:
        raise AnnotationFileError(f"{path}: <{tag}> {el.text!r} is not an integer") from None


def _root(path: Path) -> ET.Element:
    root = parse_xml(path)
    if root.tag != "annotations":
        raise AnnotationFileError(f"{path}: not a CVAT annotation file (root <{root.tag}>, "
                                  "expected <annotations>)")
    return root


def _track_attr(box: ET.Element) -> str | None:
    for a in box.findall("attribute"):
        if a.attrib.get("name") == TRACK_ATTRIBUTE and (a.text or "").strip():
            return a.text.strip()
    return None


def _match_video(name: str, known: dict[str, str]) -> str | None:
    """The pool video a path names: the longest suffix of its folders that is a video name."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    for i in range(len(parts)):
        cand = "/".join(parts[i:])
        if cand in known:
            return known[cand]
    return None


def read_cvat_images(path: str | Path, pending: PendingRound,
                     video: str | None = None) -> Annotations:
    """Boxes of a "CVAT for images 1.1" file (see the module docstring)."""
    path = Path(path)
    root = _root(path)
    ds = pending.dataset
    known = {v: v for v in pending.labels.num_frames}
    out = Annotations(str(path))
    images = root.findall("image")
    if not images and root.findall("track"):
        raise AnnotationFileError(f"{path}: holds video tracks, not images; use --format "
                                  "cvat-xml")
    skipped = 0
    for im in images:
        name = im.attrib.get("name", "")
        where = f"{path}: image {name!r}"
        p = PurePosixPath(name.replace("\\", "/"))
        m = re.search(r"(\d+)$", p.stem)
        if m is None:
            raise AnnotationFileError(f"{where}: the file name does not end in a frame number")
        frame = int(m.group(1))
        vid = video if video is not None and len(p.parts) == 1 else _match_video(
            str(p.parent), known)
        if vid is None:
            out.unknown_videos.append(str(p.parent) if str(p.parent) != "." else name)
            continue
        if vid not in known:
            out.unknown_videos.append(vid)
            continue
        v = ds[vid]
        w, h = _num(im, "width", path, where), _num(im, "height", path, where)
        if w <= 0 or h <= 0:
            raise AnnotationFileError(f"{where}: bad size {w}x{h}")
        sx, sy = v.width / w, v.height / h
        out.cover(vid, [frame])
        for el in im:
            if el.tag != "box":
                skipped += el.tag in ("polygon", "polyline", "points", "cuboid", "mask",
                                      "ellipse", "skeleton")
                continue
            label = el.attrib.get("label")
            if label is None:
                raise AnnotationFileError(f"{where}: a <box> without a label")
            box = tuple(_num(el, k, path, where) for k in ("xtl", "ytl", "xbr", "ybr"))
            out.boxes.append(ImportedBox(vid, frame, label,
                                         (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy),
                                         _track_attr(el), f"{where} box {label!r}"))
    if skipped:
        out.notes.append(f"{path}: {skipped} non-box shapes ignored")
    return out


def _task_meta(root: ET.Element, path: Path) -> ET.Element:
    meta = root.find("meta")
    if meta is None:
        raise AnnotationFileError(f"{path}: no <meta> (is the file complete?)")
    for tag in ("task", "job"):
        el = meta.find(tag)
        if el is not None:
            return el
    tasks = meta.findall("project/tasks/task")
    if len(tasks) == 1:
        return tasks[0]
    if tasks:
        raise AnnotationFileError(f"{path}: a project export with {len(tasks)} tasks; export "
                                  "each task (one video) on its own")
    raise AnnotationFileError(f"{path}: no <task> in <meta>")


def read_cvat_video(path: str | Path, pending: PendingRound,
                    video: str | None = None) -> Annotations:
    """Boxes of a "CVAT for video 1.1" file of one video task (see the module docstring)."""
    path = Path(path)
    root = _root(path)
    if root.findall("image") and not root.findall("track"):
        raise AnnotationFileError(f"{path}: holds images, not video tracks; use --format "
                                  "cvat-images")
    task = _task_meta(root, path)
    names = [video] if video is not None else _task_names(task)
    vid = _task_video(names, {v: v for v in pending.labels.num_frames})
    out = Annotations(str(path))
    if vid is None:
        out.unknown_videos.append(names[0] if names else f"{path} (no task <name>)")
        return out
    v = pending.dataset[vid]
    start, step, size = _task_frames(task, path, vid, v.num_frames)
    last = start + (size - 1) * step
    grid = range(start, last + 1, step)
    out.cover(vid, grid)
    tracks, skipped = [], 0
    for tr in root.findall("track"):
        track, n = _video_track(tr, path, start, step, size)
        skipped += n
        if track is not None:
            tracks.append(track)
    requested = [f for f in pending.requested().get(vid, ()) if f in grid]
    boxes, out.rotated = track_boxes(vid, tracks, CVAT, last + 1, requested,
                                     _task_scale(task, path, v))
    out.boxes += boxes
    if skipped:
        out.notes.append(f"{path}: {skipped} non-box shapes ignored")
    return out


def _task_names(task) -> list[str]:
    """The video names a task's meta gives (<name>, then <source>), non-empty ones."""
    names = []
    for tag in ("name", "source"):
        el = task.find(tag)
        if el is not None and el.text and el.text.strip():
            names.append(el.text.strip())
    return names


def _task_video(names: list[str], known: dict[str, str]) -> str | None:
    """The run's video a task names: exactly, else a file name's path without the extension
    matched by suffix; None when none matches."""
    vid = next((known[n] for n in names if n in known), None)
    if vid is None:
        vid = next((m for n in names if (m := _match_video(str(PurePosixPath(n).with_suffix("")),
                                                           known))), None)
    return vid


def _task_frames(task, path: Path, vid: str, num_frames: int) -> tuple[int, int, int]:
    """(start_frame, step, size) of a video task, checked against the video's frame count."""
    start = _int_text(task, "start_frame", 0, path)
    filt = task.find("frame_filter")
    step = 1
    if filt is not None and filt.text and filt.text.strip():
        m = re.fullmatch(r"\s*step\s*=\s*(\d+)\s*", filt.text)
        if m is None or int(m.group(1)) < 1:
            raise AnnotationFileError(f"{path}: <frame_filter> {filt.text!r} is not step=N")
        step = int(m.group(1))
    stop = _int_text(task, "stop_frame", None, path)
    size = _int_text(task, "size", None, path)
    if size is None:
        size = ((stop if stop is not None else num_frames - 1) - start) // step + 1
    last = start + (size - 1) * step
    if start < 0 or last >= num_frames or (stop is not None and last > stop):
        raise AnnotationFileError(
            f"{path}: wrong frame count: the task has {size} frames (start_frame {start}, step "
            f"{step}) up to video frame {last}, but {vid!r} has {num_frames} frames")
    return start, step, size


def _task_scale(task, path: Path, v) -> tuple[float, float]:
    """(sx, sy) from the task's <original_size> to the video's pixels."""
    osz = task.find("original_size")
    if osz is None:
        return 1.0, 1.0
    w, h = _int_text(osz, "width", None, path), _int_text(osz, "height", None, path)
    # A video claus encoded (`--encode`) pads odd sizes by a pixel on the right / bottom: the
    # same pixels, nothing to scale.
    if w and h and (w, h) != (v.width + v.width % 2, v.height + v.height % 2):
        return v.width / w, v.height / h
    return 1.0, 1.0


def _video_track(tr, path: Path, start: int, step: int, size: int) -> tuple[Track | None, int]:
    """(the track's keyframes as a `Track`, or None without any; non-box shapes skipped)."""
    label = tr.attrib.get("label")
    tid = tr.attrib.get("id", "?")
    if label is None:
        raise AnnotationFileError(f"{path}: track {tid} has no label")
    keys: list[Keyframe] = []
    skipped = 0
    for el in tr:
        if el.tag != "box":
            skipped += el.tag != "attribute"
            continue
        where = f"{path}: track {tid} box frame {el.attrib.get('frame')}"
        i = int(_num(el, "frame", path, where))
        if not 0 <= i < size:
            raise AnnotationFileError(
                f"{where}: frame {i} outside the task's {size} frames (wrong frame count? "
                "frame numbers of CVAT for video are task frames 0..size-1)")
        # Boxes with keyframe="0" are CVAT's own interpolation, exported for every frame: the
        # track is its keyframes, as CVAT's importer reads it.
        if el.attrib.get("keyframe", "1") != "1":
            continue
        xtl, ytl, xbr, ybr = (_num(el, k, path, where) for k in ("xtl", "ytl", "xbr", "ybr"))
        rot = _num(el, "rotation", path, where) if "rotation" in el.attrib else 0.0
        keys.append(Keyframe(start + i * step, (xtl, ytl, xbr - xtl, ybr - ytl, rot),
                             el.attrib.get("outside", "0") != "1", where))
    track = Track(label, f"cvat-track-{tid}", keys, f"{path}: track {tid}") if keys else None
    return track, skipped
