"""Label Studio: export a round's requests as video tasks; read the JSON export back.

Export (`export_labelstudio`) writes::

    OUT/tasks.json      one task per requested video (import it into the project)
    OUT/config.xml      the labelling config (Video + VideoRectangle + the classes as Labels)
    OUT/README.md       the steps

A task (https://labelstud.io/guide/task_format, .../guide/predictions)::

    {"data": {"video": URL, "claus_video": "walk/g0003_c01", "claus_round": 1,
              "frames": [5, 32, 53], "frames_text": "5, 32, 53", "fps": 24.0},
     "predictions": [{"model_version": "claus round 1", "score": 0.61,
                      "result": [{"type": "videorectangle", "from_name": "box",
                                  "to_name": "video", "score": 0.7, "value": {
                                      "framesCount": 60, "duration": 2.5, "labels": ["walk"],
                                      "sequence": [{"frame": 5, "enabled": false, "x": 12.5,
                                                    "y": 20.0, "width": 30.0, "height": 40.0,
                                                    "rotation": 0, "time": 0.2083}]}}]}]}

`frames` are 1-based, as Label Studio numbers them (claus frame f is Label Studio frame f + 1);
`x, y, width, height` are percentages of the frame size; `time` = frame / fps. Each predicted
box is a one-keyframe region (`enabled: false`: it does not carry on to later frames).

Reading (`read_labelstudio`): a Label Studio JSON export (a list of tasks). For each task with
an annotation that was not cancelled (the last updated one when there are several), every
`videorectangle` region is one actor (its `id` is the track) and each item of its `sequence`
is a box at frame `frame - 1`; the requested frames of the task's video are the frames it
answers for. `framesCount` must equal the video's frame count. Tasks of other rounds (their
`data.claus_round`; one project may hold every round's tasks) are skipped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..io import atomic_write_json, atomic_write_text
from .importer import AnnotationFileError, Annotations, ImportedBox
from .pending import PendingRound, frame_source, video_fps

__all__ = ["DEFAULT_FPS", "export_labelstudio", "labelling_config", "read_labelstudio"]

log = logging.getLogger(__name__)

#: The frame rate of tasks whose videos do not say (Label Studio's own default).
DEFAULT_FPS = 24.0


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


def _video_url(template: str | None, video: str, source: dict) -> str:
    path = source["source"] if source["source_kind"] == "video" else None
    if template is None:
        return path or f"{video}.mp4"
    return template.format(video=video, path=path or "", stem=video.rsplit("/", 1)[-1])


def export_labelstudio(
    pending: PendingRound,
    out: str | Path,
    *,
    predictions: bool = True,
    video_url: str | None = None,
    fg_threshold: float | None = None,
    device: str | None = None,
) -> Path:
    """Write tasks.json, config.xml and README.md (see the module docstring).

    Args:
        pending: the waiting round.
        out: the folder.
        predictions: add the round's model boxes on the requested frames as pre-annotations.
        video_url: URL template of a task's video, with {video} (the claus name), {stem} (its
            last part) and {path} (the video file, for datasets read from video files).
            Default: the video file's path, else "<video>.mp4".
        fg_threshold, device: passed to `predict_requests`.
    Returns:
        the folder.
    """
    out = Path(out)
    ds = pending.dataset
    preds = {}
    if predictions and not (pending.folder / "model.pt").is_file():
        # The initial selection of a run on unlabelled videos: no model has been trained yet.
        log.info("round %d has no trained model yet: tasks without pre-annotations",
                 pending.round)
        predictions = False
    if predictions:
        from .predictions import predict_requests

        preds = predict_requests(pending, fg_threshold=fg_threshold, device=device)
    tasks = []
    for req in pending.requests:
        v = ds[req.video]
        fps = video_fps(v) or DEFAULT_FPS
        ls_frames = [f + 1 for f in req.frames]
        task = {"data": {"video": _video_url(video_url, v.name, frame_source(v)),
                         "claus_video": v.name, "claus_round": pending.round,
                         "frames": ls_frames, "frames_text": ", ".join(map(str, ls_frames)),
                         "fps": fps}}
        if predictions:
            result, scores = [], []
            for f, boxes in preds.get(v.name, {}).items():
                for k, b in enumerate(boxes):
                    x1, y1, x2, y2 = b.box
                    result.append({
                        "id": f"claus-{f}-{k}", "type": "videorectangle", "from_name": "box",
                        "to_name": "video", "origin": "prediction", "score": round(b.score, 6),
                        "value": {"framesCount": v.num_frames,
                                  "duration": round(v.num_frames / fps, 6),
                                  "labels": [ds.classes[b.label]],
                                  "sequence": [{"frame": f + 1, "enabled": False, "rotation": 0,
                                                "x": 100.0 * x1 / v.width,
                                                "y": 100.0 * y1 / v.height,
                                                "width": 100.0 * (x2 - x1) / v.width,
                                                "height": 100.0 * (y2 - y1) / v.height,
                                                "time": round((f + 1) / fps, 6)}]}})
                    scores.append(b.score)
            task["predictions"] = [{
                "model_version": f"claus {pending.run.name} round {pending.round}",
                "score": round(sum(scores) / len(scores), 6) if scores else 0.0,
                "result": result}]
        tasks.append(task)
    atomic_write_json(out / "tasks.json", tasks)
    atomic_write_text(out / "config.xml", labelling_config(ds.classes))
    atomic_write_text(out / "README.md", _README.format(
        run=pending.run, round=pending.round, videos=len(tasks),
        frames=sum(len(r.frames) for r in pending.requests)))
    return out


_README = """# Label Studio project: round {round} of {run}

{frames} frames of {videos} videos to label. Frame numbers in `tasks.json` are Label Studio's
(1-based: claus frame f is frame f + 1).

1. Create a project; Settings → Labeling Interface → Code: paste `config.xml`.
2. Make the videos reachable at the `data.video` URLs of `tasks.json` (serve the folder, local
   storage, or edit the URLs; `python -m claus.select ... --video-url TEMPLATE` rewrites them).
   Datasets stored as frames need videos encoded at the task's `fps` so frame numbers match.
3. Import `tasks.json` (the model's boxes come as predictions, with their scores).
4. In each task go to every listed frame, draw or correct a box around every actor (each box
   a keyframe) with its class; a listed frame without boxes is recorded as "no actor". Submit.
5. Export → JSON, then:

       python -m claus.annotate --run {run} --file export.json --format labelstudio
       python -m claus.train --resume {run}
"""


# ---------------------------------------------------------------------------- reading
def _annotation(task: dict) -> dict | None:
    """The task's annotation to use: not cancelled, the last updated of several."""
    anns = [a for a in task.get("annotations") or [] if isinstance(a, dict)
            and not a.get("was_cancelled")]
    if not anns:
        return None
    order = sorted(range(len(anns)), key=lambda i: (str(anns[i].get("updated_at")
                                                          or anns[i].get("created_at") or ""), i))
    return anns[order[-1]]


def _pct(item: dict, key: str, where: str) -> float:
    try:
        return float(item[key])
    except (KeyError, TypeError, ValueError):
        raise AnnotationFileError(f"{where}: missing or bad {key!r}") from None


def read_labelstudio(path: str | Path, pending: PendingRound) -> Annotations:
    """Boxes of a Label Studio JSON export (see the module docstring)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AnnotationFileError(f"{path}: not JSON ({e}); is the file complete?") from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(t, dict) and isinstance(t.get("data"),
                                                                              dict) for t in doc):
        raise AnnotationFileError(f"{path}: not a Label Studio JSON export (a list of tasks, "
                                  "each with 'data'); export with the JSON format")
    out = Annotations(str(path))
    requested = pending.requested()
    known = pending.labels.num_frames
    for k, task in enumerate(doc):
        tid = task.get("id", f"#{k}")
        vid = task["data"].get("claus_video")
        if vid is None:
            out.unknown_videos.append(f"task {tid} (no data.claus_video: tasks must come from "
                                      "claus.select)")
            continue
        if vid not in known:
            out.unknown_videos.append(str(vid))
            continue
        rd = task["data"].get("claus_round")
        if rd is not None and rd != pending.round:
            out.notes.append(f"{path}: task {tid} ({vid}) belongs to round {rd}, ignored")
            continue
        ann = _annotation(task)
        if ann is None:
            out.notes.append(f"{path}: task {tid} ({vid}) has no submitted annotation")
            continue
        v = pending.dataset[vid]
        out.cover(vid, requested.get(vid, ()))
        results = [r for r in ann.get("result") or [] if isinstance(r, dict)]
        labels_of = {r.get("id"): r.get("value", {}).get("labels") for r in results
                     if r.get("type") == "labels"}
        for r in results:
            if r.get("type") != "videorectangle":
                continue
            rid = r.get("id", "?")
            where = f"{path}: task {tid} region {rid}"
            val = r.get("value") or {}
            n = val.get("framesCount")
            if n is not None and int(n) != v.num_frames:
                raise AnnotationFileError(
                    f"{where}: wrong frame count: Label Studio counted {n} frames but {vid!r} "
                    f"has {v.num_frames} (was the video encoded at another frame rate than the "
                    "task's fps?)")
            labels = val.get("labels") or labels_of.get(rid) or []
            if len(labels) != 1:
                raise AnnotationFileError(f"{where}: want exactly one label, got {labels}")
            seq = val.get("sequence")
            if not isinstance(seq, list):
                raise AnnotationFileError(f"{where}: no 'sequence' of keyframes")
            keys = []
            for item in seq:
                try:
                    f = int(item["frame"]) - 1
                except (KeyError, TypeError, ValueError):
                    raise AnnotationFileError(f"{where}: a keyframe without a frame") from None
                w = f"{where} frame {f + 1}"
                x, y = _pct(item, "x", w), _pct(item, "y", w)
                bw, bh = _pct(item, "width", w), _pct(item, "height", w)
                if item.get("rotation"):
                    out.notes.append(f"{w}: rotation {item['rotation']} ignored")
                box = (x * v.width / 100, y * v.height / 100, (x + bw) * v.width / 100,
                       (y + bh) * v.height / 100)
                out.boxes.append(ImportedBox(vid, f, str(labels[0]), box, f"ls-{rid}", w))
                keys.append((f, bool(item.get("enabled", True))))
            # An enabled keyframe carries the box on (interpolated) to the next keyframe.
            keys.sort()
            for (f0, on), (f1, _) in zip(keys, keys[1:] + [(v.num_frames, False)], strict=True):
                if on:
                    out.interpolated.setdefault(vid, set()).update(range(f0 + 1, f1))
    return out
