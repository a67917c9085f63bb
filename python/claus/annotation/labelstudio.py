"""Label Studio: export a round's requests as video tasks; read the JSON export back.

Export (`export_labelstudio`) writes::

    OUT/tasks.json      one task per requested video (import it into the project)
    OUT/config.xml      the labelling config (Video + VideoRectangle + the classes as Labels)
    OUT/README.md       the steps, with the video serving that fits the export

A task (https://labelstud.io/guide/task_format, .../guide/predictions)::

    {"data": {"video": URL, "claus_video": "walk/g0003_c01", "claus_round": 1,
              "claus_size": [64, 48], "frames": [5, 32, 53], "frames_text": "5, 32, 53",
              "fps": 24.0},
     "predictions": [{"model_version": "claus round 1", "score": 0.61,
                      "result": [{"id": "claus-0", "type": "videorectangle",
                                  "from_name": "box", "to_name": "video", "score": 0.7,
                                  "value": {"framesCount": 60, "duration": 2.5,
                                            "labels": ["walk"], "sequence": [
                          {"frame": 5, "enabled": true, "x": 12.5, "y": 20.0, "width": 30.0,
                           "height": 40.0, "rotation": 0, "time": 0.2083},
                          {"frame": 32, "enabled": false, ...}]}}]}]}

`frames` are 1-based, as Label Studio numbers them (claus frame f is Label Studio frame f + 1);
`x, y, width, height` are percentages of `claus_size` (the size of the video the URL points
to: the frame size, or the even size of a video claus encoded); `time` = frame / fps. Each tube
the round's model detects (`predict_requests`) is one region, a track with a keyframe on each
requested frame it spans, enabled up to the last one, which ends it: accepting it gives one
actor.

Videos: `encode` (`claus.select --encode`) writes the requested videos as H.264 MP4
(`claus.annotation.encode`) and points the tasks at them: by default through Label Studio's
local-files serving, `/data/local-files/?d=<path under document_root>/<video>.mp4` (the
document root is Label Studio's LOCAL_FILES_DOCUMENT_ROOT, by default the folder's parent; the
README gives the environment variables and the storage to add), or at `video_url` (`{file}` is
the file's path inside the folder).

Reading (`read_labelstudio`): a Label Studio JSON export (a list of tasks). Tasks of other
rounds (their `data.claus_round`; one project may hold every round's tasks) are skipped. Of a
task's annotations, the one used is the latest submitted (`updated_at`, else `created_at`)
that was not cancelled, or with `annotator` the latest by that user (`completed_by`: an id,
or an object with `id` and `email`; either matches); a note lists them when there are
several. Each `videorectangle` region is one actor (its `id` is the track), drawn on the
requested frames as Label Studio draws it (`claus.annotation.tracks.LABEL_STUDIO`): a keyframe
on its frame, linear interpolation after an `enabled` keyframe up to the next keyframe, held
after the last one to the video's end, nothing after a disabled keyframe until the next
keyframe. Sequence items marked `auto` (an export with interpolated frames) are the tool's own
interpolation of the keyframes and are recomputed, not read. `framesCount` must equal the
video's frame count.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from ..io import atomic_write_json, atomic_write_text
from .encode import DEFAULT_FPS, EncodedVideo, encode_videos, task_fps
from .pending import PendingRound, frame_source
from .tracks import LABEL_STUDIO, Keyframe, Track, track_boxes
from .types import AnnotationFileError, Annotations

__all__ = ["DEFAULT_FPS", "LOCAL_FILES", "export_labelstudio", "labelling_config",
           "read_labelstudio"]

log = logging.getLogger(__name__)

#: Label Studio's URL of a file its local-files serving hands out (`d`: the path under
#: LOCAL_FILES_DOCUMENT_ROOT).
LOCAL_FILES = "/data/local-files/?d="


def labelling_config(classes: list[str]) -> str:
    """The Label Studio labelling config of claus tasks."""
    labels = "\n".join(f"    <Label value={quoteattr(c)}/>" for c in classes)
    return f"""<View>
  <Header value="Draw a box around every actor at each of these frames (each box a keyframe); leave a frame without boxes when nobody acts:"/>
  <Header value="$frames_text"/>
  <Labels name="videoLabels" toName="video" allowEmpty="true">
{labels}
  </Labels>
  <Video name="video" value="$video" framerate="$fps"/>
  <VideoRectangle name="box" toName="video"/>
</View>
"""  # noqa: E501


def _local_path(folder: Path, root: Path) -> str:
    """The path of `folder` under Label Studio's document root `root` (POSIX, no slashes at the
    ends); an error when it is not below it (Label Studio would not serve it)."""
    try:
        rel = folder.resolve().relative_to(root.resolve()).as_posix()
        return "" if rel == "." else rel
    except ValueError:
        raise ValueError(f"--document-root (LOCAL_FILES_DOCUMENT_ROOT): the videos folder "
                         f"{folder.resolve()} is not under {root.resolve()}, and Label Studio "
                         "serves only files below it; encode into a folder below it (--encode "
                         "DIR) or give a root it is under") from None


def _video_url(template: str | None, video: str, source: dict,
               encoded: EncodedVideo | None, folder: Path | None, under: str) -> str:
    """A task's video URL (see `export_labelstudio`); `under` is the folder's path under
    Label Studio's document root."""
    file = ""
    if encoded is not None and folder is not None:
        file = encoded.path.relative_to(folder).as_posix()
        path = str(encoded.path.resolve())
    else:
        path = source["source"] if source["source_kind"] == "video" else None
    if template is None:
        if encoded is not None and folder is not None:
            return LOCAL_FILES + quote("/".join(x for x in (under, file) if x), safe="/")
        return path or f"{video}.mp4"
    return template.format(video=video, path=path or "", stem=video.rsplit("/", 1)[-1],
                           file=file)


def _percent(box, size: tuple[int, int]) -> dict:
    x1, y1, x2, y2 = box
    w, h = size
    return {"x": 100.0 * x1 / w, "y": 100.0 * y1 / h, "width": 100.0 * (x2 - x1) / w,
            "height": 100.0 * (y2 - y1) / h}


def export_labelstudio(
    pending: PendingRound,
    out: str | Path,
    *,
    predictions: bool = True,
    video_url: str | None = None,
    fg_threshold: float | None = None,
    device: str | None = None,
    encode: str | Path | None = None,
    fps: float | None = None,
    document_root: str | Path | None = None,
) -> Path:
    """Write tasks.json, config.xml and README.md (see the module docstring).

    Args:
        pending: the waiting round.
        out: the folder.
        predictions: add the tubes the round's model detects as pre-annotations.
        video_url: URL template of a task's video, with {video} (the claus name), {stem} (its
            last part), {path} (the video file: the encoded one with `encode`, else the
            dataset's, for datasets read from video files) and {file} (the encoded file's path
            inside `encode`). Default: with `encode`, Label Studio's local-files URL
            `/data/local-files/?d=<encode folder under document_root>/{file}`; else the video
            file's path, else "<video>.mp4".
        fg_threshold, device: passed to `predict_requests`.
        encode: a folder to encode the requested videos into (`encode_videos`; files already
            there are reused), or None.
        fps: the tasks' frame rate (and the encoded videos'); default `task_fps`.
        document_root: Label Studio's LOCAL_FILES_DOCUMENT_ROOT, for the default URLs of
            encoded videos (default: the parent of `encode`); `encode` must lie below it.
    Returns:
        the folder.
    """
    out = Path(out)
    ds = pending.dataset
    preds = {}
    if predictions and not pending.files.model.is_file():
        # The initial selection of a run on unlabelled videos: no model has been trained yet.
        log.info("round %d has no trained model yet: tasks without pre-annotations",
                 pending.round)
        predictions = False
    if predictions:
        from .predictions import predict_requests

        preds = predict_requests(pending, fg_threshold=fg_threshold, device=device)
    folder = Path(encode) if encode is not None else None
    root = None
    under = ""
    if folder is not None and video_url is None:
        root = Path(document_root) if document_root is not None else folder.resolve().parent
        under = _local_path(folder, root)
    encoded = encode_videos(pending, folder, fps=fps) if folder is not None else {}
    tasks = []
    for req in pending.requests:
        v = ds[req.video]
        enc = encoded.get(v.name)
        rate = enc.fps if enc is not None else task_fps(ds, v, fps)
        size = (enc.width, enc.height) if enc is not None else (v.width, v.height)
        ls_frames = [f + 1 for f in req.frames]
        task = {"data": {"video": _video_url(video_url, v.name, frame_source(v), enc, folder,
                                             under),
                         "claus_video": v.name, "claus_round": pending.round,
                         "claus_size": list(size), "frames": ls_frames,
                         "frames_text": ", ".join(map(str, ls_frames)), "fps": rate}}
        if predictions:
            result = []
            tracks = preds.get(v.name, [])
            for k, t in enumerate(tracks):
                frames = sorted(t.boxes)
                # Enabled keyframes carry the box on to the next one; the last ends the track.
                seq = [{"frame": f + 1, "enabled": i < len(frames) - 1, "rotation": 0,
                        **_percent(t.boxes[f], size), "time": round((f + 1) / rate, 6)}
                       for i, f in enumerate(frames)]
                result.append({
                    "id": f"claus-{k}", "type": "videorectangle", "from_name": "box",
                    "to_name": "video", "origin": "prediction", "score": round(t.score, 6),
                    "value": {"framesCount": v.num_frames,
                              "duration": round(v.num_frames / rate, 6),
                              "labels": [ds.classes[t.label]], "sequence": seq}})
            task["predictions"] = [{
                "model_version": f"claus {pending.run.name} round {pending.round}",
                "score": round(sum(t.score for t in tracks) / len(tracks), 6) if tracks
                else 0.0,
                "result": result}]
        tasks.append(task)
    atomic_write_json(out / "tasks.json", tasks)
    atomic_write_text(out / "config.xml", labelling_config(ds.classes))
    atomic_write_text(out / "README.md", _readme(pending, tasks, folder, video_url, root, under))
    return out


_SERVE_LOCAL = """## 1. Start Label Studio serving the videos

The videos are in `{folder}` (H.264 MP4 written by `claus.select --encode`, reused by later
rounds). Label Studio serves them itself, with the byte ranges its player needs, once
local-files serving is on with this document root (a folder the videos are under: the
tasks' URLs are the videos' paths below it, `claus.select --document-root` sets another):

    export LOCAL_FILES_SERVING_ENABLED=true
    export LOCAL_FILES_DOCUMENT_ROOT={root}
    label-studio start

(Label Studio also reads them with a `LABEL_STUDIO_` prefix.)

## 2. Create the project

1. Create a project; Settings → Labeling Interface → Code: paste `config.xml`. Save.
2. Settings → Cloud Storage → Add Source Storage → Local files. Absolute local path:
   `{folder}`; leave "Treat every bucket object as a source file" off; Add Storage. Do not
   sync it: the tasks come from `tasks.json`, the storage only lets Label Studio hand out the
   files under that path.
3. Import `tasks.json`. Each task's video is `{url}<video>.mp4`.
"""

_SERVE_URL = """## 1. Serve the videos

The videos are in `{folder}` (H.264 MP4 written by `claus.select --encode`, reused by later
rounds); the tasks point at `{template}` (`{{file}}` is the path under that folder). The
browser fetches them from another origin than Label Studio's and its player asks for byte
ranges: the server must send CORS headers (`Access-Control-Allow-Origin`) and answer ranges
(206 Partial Content), which `python -m http.server` does not. claus has one that does:

    python -m claus.annotation.serve {folder} --port 8081

(with `--video-url 'http://localhost:8081/{{file}}'`). Label Studio can serve them itself:
run `claus.select` again without `--video-url` and follow its README.

## 2. Create the project

1. Create a project; Settings → Labeling Interface → Code: paste `config.xml`. Save.
2. Import `tasks.json`.
"""

_SERVE_NONE = """## 1. Make the videos reachable

The tasks' videos are their `data.video` URLs (`claus.select ... --video-url TEMPLATE` sets
them). Label Studio plays them in the browser: they must be MP4 (H.264) or WebM with one frame
per frame of the dataset at the task's `fps`, from a server that sends CORS headers and
answers byte ranges. Datasets stored as frames (and .avi files) have no such videos:

    python -m claus.select --run {run} --format labelstudio --encode

writes them (H.264 MP4, into `{run}/videos`, only this round's, reused later) and a README
with the steps to have Label Studio serve them.

## 2. Create the project

1. Create a project; Settings → Labeling Interface → Code: paste `config.xml`. Save.
2. Import `tasks.json`.
"""

_LABEL = """
## 3. Label

In each task go to every listed frame and draw or correct a box around every actor, with its
class. A region is a track: each box you draw is a keyframe, Label Studio interpolates between
keyframes, and an enabled keyframe carries its box on to the next keyframe or to the video's
end; turn interpolation off on the keyframe where the actor leaves (the region's timeline).
claus takes, on every listed frame, the box Label Studio shows there; a listed frame where no
box shows is recorded as "no actor".{predictions} Submit. With several annotators claus takes
each task's latest submitted annotation (`--annotator ID_OR_EMAIL`: someone's).

## 4. Bring the labels back

Export → JSON, then:

    python -m claus.annotate --run {run} --file export.json --format labelstudio
    python -m claus.train --resume {run}
"""

_PREDICTIONS = """ The model's tubes come as predictions, one track per tube with a
keyframe on each listed frame it spans: accept them (each becomes one actor) and correct what
is wrong."""


def _readme(pending: PendingRound, tasks: list[dict], folder: Path | None,
            video_url: str | None, root: Path | None, under: str) -> str:
    run = pending.run
    frames = sum(len(t["data"]["frames"]) for t in tasks)
    rates = ", ".join(f"{r:g}" for r in sorted({t["data"]["fps"] for t in tasks})) or "-"
    head = f"""# Label Studio project: round {pending.round} of {run}

{frames} frames of {len(tasks)} videos to label. Frame numbers in `tasks.json` are Label
Studio's (1-based: claus frame f is frame f + 1). The tasks' frame rate (`data.fps`, {rates})
is their videos' rate, so Label Studio's frames are the videos' frames.

"""
    if folder is not None and root is not None:
        serve = _SERVE_LOCAL.format(folder=folder.resolve(), root=root.resolve(),
                                    url=LOCAL_FILES + quote(f"{under}/" if under else "",
                                                            safe="/"))
    elif folder is not None:
        serve = _SERVE_URL.format(folder=folder.resolve(), template=video_url)
    else:
        serve = _SERVE_NONE.format(run=run)
    preds = _PREDICTIONS if any(t.get("predictions") for t in tasks) else ""
    return head + serve + _LABEL.format(predictions=preds, run=run)


# ---------------------------------------------------------------------------- reading
def _when(ann: dict) -> datetime:
    for key in ("updated_at", "created_at"):
        text = ann.get(key)
        if isinstance(text, str) and text:
            try:
                t = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
            return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return datetime.min.replace(tzinfo=timezone.utc)


def _who(ann: dict) -> tuple[str | None, str | None]:
    """(id, email) of the annotation's `completed_by` (an id, or an object)."""
    cb = ann.get("completed_by")
    if isinstance(cb, dict):
        uid, email = cb.get("id"), cb.get("email")
        return (None if uid is None else str(uid), email if isinstance(email, str) else None)
    return (None if cb is None else str(cb), None)


def _describe(ann: dict) -> str:
    uid, email = _who(ann)
    return f"#{ann.get('id', '?')} by {email or uid or 'unknown'}"


def _annotation(task: dict, annotator: str | None) -> tuple[dict | None, list[dict]]:
    """(the annotation to use or None, the candidates it was chosen from): the latest
    submitted, not cancelled, by `annotator` when given."""
    anns = [a for a in task.get("annotations") or [] if isinstance(a, dict)
            and not a.get("was_cancelled")]
    if annotator is not None:
        want = annotator.strip().casefold()
        anns = [a for a in anns if want in {x.casefold() for x in _who(a) if x}]
    if not anns:
        return None, anns
    order = sorted(range(len(anns)), key=lambda i: (_when(anns[i]), i))
    return anns[order[-1]], anns


def _pct(item: dict, key: str, where: str) -> float:
    try:
        return float(item[key])
    except (KeyError, TypeError, ValueError):
        raise AnnotationFileError(f"{where}: missing or bad {key!r}") from None


def _task_size(task: dict, v) -> tuple[float, float]:
    """The pixel size the task's percentages refer to: `data.claus_size`, else the frame's."""
    size = task["data"].get("claus_size")
    if (isinstance(size, list) and len(size) == 2
            and all(isinstance(x, (int, float)) and x > 0 for x in size)):
        return float(size[0]), float(size[1])
    return float(v.width), float(v.height)


def export_tasks(path: str | Path, chunk: int = 1 << 18) -> Iterator[Any]:
    """The elements of a JSON file's top-level array, one at a time (the file's value itself
    when it is not an array).

    Each element is parsed by the C scanner of `json` (`JSONDecoder.raw_decode`) from a buffer
    holding a chunk of the text, so a 50 MB export never exists as Python objects at once: one
    task does. Malformed JSON or UTF-8 raises the error `json.loads(path.read_text())` raises
    (the file is read again whole to say where), after the elements before it.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            yield from _ArrayReader(fh, chunk).items()
    except (json.JSONDecodeError, UnicodeDecodeError):
        json.loads(path.read_text(encoding="utf-8"))  # the whole-file error, with its place
        raise


class _ArrayReader:
    """A JSON text read a chunk at a time; `buf` holds what is not parsed yet."""

    _SPACE = " \t\n\r"  # JSON's whitespace
    _AFTER = _SPACE + ",]"  # what may follow an element of an array

    def __init__(self, fh, chunk: int):
        self.fh, self.chunk = fh, chunk
        self.buf, self.eof = "", False
        self.decode = json.JSONDecoder().raw_decode

    def more(self) -> bool:
        """Read the next chunk onto the buffer; False at the end of the file."""
        text = self.fh.read(self.chunk)
        self.eof = len(text) < self.chunk
        self.buf += text
        return bool(text)

    def skip(self, pos: int) -> int:
        """The first position from `pos` that is not whitespace (reading on as needed)."""
        while True:
            while pos < len(self.buf) and self.buf[pos] in self._SPACE:
                pos += 1
            if pos < len(self.buf) or self.eof or not self.more():
                return pos

    def parse(self, pos: int) -> tuple[Any, int]:
        """The value at `pos` and the position after it (reading on as needed)."""
        while True:
            try:
                value, end = self.decode(self.buf, pos)
            except json.JSONDecodeError:
                if self.eof or not self.more():
                    raise
                continue  # the value goes on past the buffer: parse it again, whole
            # A number cut by the buffer's end parses as a shorter one: read on unless what
            # follows can end an element.
            if (end < len(self.buf) and self.buf[end] in self._AFTER) or self.eof \
                    or not self.more():
                return value, end

    def items(self) -> Iterator[Any]:
        pos = self.skip(0)
        if self.buf[pos:pos + 1] != "[":
            while self.more():
                pass
            yield json.loads(self.buf)
            return
        pos, first = self.skip(pos + 1), True
        while self.buf[pos:pos + 1] != "]":
            if not first:
                if self.buf[pos:pos + 1] != ",":
                    raise json.JSONDecodeError("Expecting ',' delimiter", self.buf, pos)
                pos = self.skip(pos + 1)
            value, pos = self.parse(pos)
            yield value
            first = False
            if pos > self.chunk:  # let the parsed text go (now and then: a cut copies the rest)
                self.buf, pos = self.buf[pos:], 0
            pos = self.skip(pos)
        end = self.skip(pos + 1)
        if end < len(self.buf):
            raise json.JSONDecodeError("Extra data", self.buf, end)


#: Kinds of notes the reader repeats once per task (the summary counts them).
OTHER_ROUND = "tasks of other rounds, ignored"
NOT_SUBMITTED = "tasks without a submitted annotation"
SEVERAL = "tasks with several submitted annotations (the latest used)"


def read_labelstudio(path: str | Path, pending: PendingRound,
                     annotator: str | None = None) -> Annotations:
    """Boxes of a Label Studio JSON export (see the module docstring).

    The export is read a task at a time (`export_tasks`).

    Args:
        path: the export.
        pending: the waiting round.
        annotator: use only the annotations of this user (`completed_by` id or email).
    """
    path = Path(path)
    out = Annotations(str(path))
    ctx = _Reading(path, pending, annotator, out)
    failed: AnnotationFileError | None = None
    shape = False
    try:
        for k, task in enumerate(export_tasks(path)):
            if not (isinstance(task, dict) and isinstance(task.get("data"), dict)):
                shape = True  # reported once the whole file is known to be JSON
            if shape or failed is not None:
                continue
            try:
                ctx.task(k, task)
            except AnnotationFileError as e:
                failed = e  # JSON errors and malformed tasks anywhere come first
    except json.JSONDecodeError as e:
        raise AnnotationFileError(f"{path}: not JSON ({e}); is the file complete?") from None
    if shape:
        raise AnnotationFileError(f"{path}: not a Label Studio JSON export (a list of tasks, "
                                  "each with 'data'); export with the JSON format")
    if failed is not None:
        raise failed
    if ctx.auto:
        out.notes.append(f"{path}: {ctx.auto} interpolated sequence items (an export with "
                         "interpolated frames) recomputed from the keyframes")
    return out


class _Reading:
    """One export being read: the round's requests and what the tasks gave so far."""

    def __init__(self, path: Path, pending: PendingRound, annotator: str | None,
                 out: Annotations):
        self.path, self.pending, self.annotator, self.out = path, pending, annotator, out
        self.requested = pending.requested()
        self.known = pending.labels.num_frames
        self.auto = 0

    def task(self, k: int, task: dict) -> None:
        """Read task k: its boxes, or why it is skipped."""
        path, out, annotator = self.path, self.out, self.annotator
        tid = task.get("id", f"#{k}")
        vid = task["data"].get("claus_video")
        if vid is None:
            out.unknown_videos.append(f"task {tid} (no data.claus_video: tasks must come from "
                                      "claus.select)")
            return
        if vid not in self.known:
            out.unknown_videos.append(str(vid))
            return
        rd = task["data"].get("claus_round")
        if rd is not None and rd != self.pending.round:
            out.note(f"{path}: task {tid} ({vid}) belongs to round {rd}, ignored", OTHER_ROUND)
            return
        ann, candidates = _annotation(task, annotator)
        if ann is None:
            by = f" by {annotator}" if annotator is not None else ""
            draft = " (only a draft: submit it in Label Studio)" if task.get("drafts") else ""
            out.note(f"{path}: task {tid} ({vid}) has no submitted annotation{by}{draft}",
                     NOT_SUBMITTED)
            return
        if len(candidates) > 1:
            out.note(f"{path}: task {tid} ({vid}) has {len(candidates)} submitted annotations ("
                     + ", ".join(map(_describe, candidates)) + f"); used the latest, "
                     f"{_describe(ann)}; --annotator ID_OR_EMAIL chooses another", SEVERAL)
        v = self.pending.dataset[vid]
        width, height = _task_size(task, v)
        out.cover(vid, self.requested.get(vid, ()))
        results = [r for r in ann.get("result") or [] if isinstance(r, dict)]
        labels_of = {r.get("id"): r.get("value", {}).get("labels") for r in results
                     if r.get("type") == "labels"}
        tracks = []
        for r in results:
            if r.get("type") == "videorectangle":
                track = self._region(r, f"{path}: task {tid} region {r.get('id', '?')}", v,
                                     vid, labels_of, (width, height))
                if track is not None:
                    tracks.append(track)
        boxes, rotated = track_boxes(vid, tracks, LABEL_STUDIO, v.num_frames,
                                     self.requested.get(vid, ()))
        out.boxes += boxes
        out.rotated += rotated

    def _region(self, r: dict, where: str, v, vid: str, labels_of: dict,
                size: tuple[float, float]) -> Track | None:
        """A videorectangle region as a track of its keyframes (None: no keyframes)."""
        val = r.get("value") or {}
        n = val.get("framesCount")
        if n is not None and int(n) != v.num_frames:
            raise AnnotationFileError(
                f"{where}: wrong frame count: Label Studio counted {n} frames but {vid!r} "
                f"has {v.num_frames} (was the video encoded at another frame rate than the "
                "task's fps?)")
        labels = val.get("labels") or labels_of.get(r.get("id", "?")) or []
        if len(labels) != 1:
            raise AnnotationFileError(f"{where}: want exactly one label, got {labels}")
        seq = val.get("sequence")
        if not isinstance(seq, list):
            raise AnnotationFileError(f"{where}: no 'sequence' of keyframes")
        keys = []
        for item in seq:
            if not isinstance(item, dict):
                raise AnnotationFileError(f"{where}: a keyframe that is not an object")
            if item.get("auto"):  # Label Studio's interpolation, exported: recomputed
                self.auto += 1
                continue
            keys.append(_keyframe(item, where, size))
        return Track(str(labels[0]), f"ls-{r.get('id', '?')}", keys, where) if keys else None


def _keyframe(item: dict, where: str, size: tuple[float, float]) -> Keyframe:
    """A sequence item as a keyframe in the pixels of `size` (width, height)."""
    width, height = size
    try:
        f = int(item["frame"]) - 1
    except (KeyError, TypeError, ValueError):
        raise AnnotationFileError(f"{where}: a keyframe without a frame") from None
    w = f"{where} frame {f + 1}"
    x, y = _pct(item, "x", w), _pct(item, "y", w)
    bw, bh = _pct(item, "width", w), _pct(item, "height", w)
    rot = _pct(item, "rotation", w) if item.get("rotation") is not None else 0.0
    return Keyframe(f, (x * width / 100, y * height / 100, bw * width / 100, bh * height / 100,
                        rot), bool(item.get("enabled", False)), w)
