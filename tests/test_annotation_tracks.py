"""Tracks in annotation tools: what Label Studio and CVAT show between keyframes is what claus
imports; the model's tubes go out as Label Studio tracks; `--encode` writes the videos the
tools play; several annotations of a task follow one documented rule.

The tool files are written here in each tool's documented export format, on a dataset with
odd, far from square frames (101 × 45) so that a width/height swap or an off-by-one in the
percent conversion shows, and imported through the CLI (`claus.annotate`) unless a test is
about a library function.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from claus.annotate import main as annotate_main
from claus.annotation import AnnotationFileError, PredictedTrack, open_pending
from claus.annotation.serve import make_server
from claus.annotation.tracks import CVAT, LABEL_STUDIO, Keyframe, enclosing_box, shown_boxes
from claus.rounds import AwaitingLabels, run_rounds
from claus.select import main as select_main

from tests.realdata import render_custom
from tests.test_annotation import (
    FakeTrainer,
    assert_tracks_linked,
    canon,
    cfg,
    expected,
    imported,
)

W, H = 101, 45  # frame width, height


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    """Custom JPEG-folder videos of 101 × 45 pixels: one or two actors each."""
    return render_custom(tmp_path_factory.mktemp("custom"), size=(H, W)).load()


@pytest.fixture(scope="module")
def waiting(tmp_path_factory, ds):
    """A run stopped after round 0's selection (copied per test): 3 videos, one with two
    actors, one whose actor appears after a requested frame."""
    run = tmp_path_factory.mktemp("waiting") / "run"
    with pytest.raises(AwaitingLabels):
        run_rounds(run, cfg(data=ds.spec, init_percent=5, step_percent=10, target_percent=60,
                            train={"size": 32}),
                   trainer=FakeTrainer().trainer(), dataset=ds, progress=False)
    return run


@pytest.fixture
def run(tmp_path, waiting) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(waiting, dst)
    return dst


def _tasks(run: Path, capsys, *extra: str) -> list[dict]:
    assert select_main(["--run", str(run), "--format", "labelstudio", "--no-predictions",
                        *extra]) == 0
    capsys.readouterr()
    folder = open_pending(run).folder / "export" / "labelstudio"
    return json.loads((folder / "tasks.json").read_text())


def _tube_span(t) -> tuple[int, int]:
    return t.start, t.start + len(t.boxes) - 1


def _lerp(b0, b1, r: float) -> np.ndarray:
    return np.asarray(b0, np.float64) + (np.asarray(b1, np.float64) - b0) * r


def _ls_item(f: int, box, size, fps: float, enabled: bool) -> dict:
    """A Label Studio sequence item (frame f 0-based) of a box in pixels of `size`."""
    w, h = size
    return {"frame": f + 1, "enabled": enabled, "rotation": 0, "x": 100 * float(box[0]) / w,
            "y": 100 * float(box[1]) / h, "width": 100 * float(box[2] - box[0]) / w,
            "height": 100 * float(box[3] - box[1]) / h, "time": (f + 1) / fps}


def _ls_export(p, tasks: list[dict], keys_of, annotations=None) -> list[dict]:
    """A Label Studio JSON export: per task one annotation with a videorectangle region per
    ground-truth tube, keyframes [(frame, enabled)] = keys_of(video, tube) with the tube's
    boxes there. `annotations(task, result)` may give the task's annotation list instead."""
    out = []
    for i, task in enumerate(tasks):
        v = p.dataset[task["data"]["claus_video"]]
        size, fps = task["data"]["claus_size"], task["data"]["fps"]
        result = []
        for k, t in enumerate(v.tubes):
            seq = [_ls_item(f, t.box(f), size, fps, on) for f, on in keys_of(v, t)]
            result.append({"id": f"t{k}", "from_name": "box", "to_name": "video",
                           "type": "videorectangle", "origin": "manual",
                           "value": {"framesCount": v.num_frames, "duration": v.num_frames / fps,
                                     "sequence": seq, "labels": [p.dataset.classes[t.label]]}})
        anns = (annotations(task, result) if annotations else
                [{"id": 10 + i, "completed_by": 1, "was_cancelled": False, "result": result,
                  "created_at": "2026-01-05T10:00:00.000000Z",
                  "updated_at": "2026-01-05T10:02:00.000000Z"}])
        out.append({"id": 100 + i, "data": task["data"], "annotations": anns,
                    "predictions": []})
    return out


def _want(p, shown) -> dict:
    """{(video, frame): sorted [(label, box)]} of the requested frames, from
    shown(video, tube, frame) → box or None."""
    out = {}
    for r in p.requests:
        v = p.dataset[r.video]
        for f in r.frames:
            boxes = [(t.label, b) for t in v.tubes if (b := shown(v, t, f)) is not None]
            out[(r.video, f)] = sorted((lab, tuple(float(x) for x in b)) for lab, b in boxes)
    return out


def _got(p) -> dict:
    state = imported(p)
    return {(r.video, f): sorted((b.label, tuple(float(x) for x in b.box))
                                 for b in state.boxes(r.video, f))
            for r in p.requests for f in r.frames}


def assert_same(got: dict, want: dict, atol: float = 1e-3) -> None:
    """The same frames, with the same classes and boxes (to `atol` pixels) on each."""
    assert got.keys() == want.keys()
    for key in want:
        assert [lab for lab, _ in got[key]] == [lab for lab, _ in want[key]], key
        assert np.allclose(np.reshape([b for _, b in got[key]], (-1, 4)),
                           np.reshape([b for _, b in want[key]], (-1, 4)), atol=atol), key


def _import(run: Path, files, fmt: str, capsys, *extra: str) -> str:
    rc = annotate_main(["--run", str(run), "--file", *map(str, files), "--format", fmt, *extra])
    text = capsys.readouterr()
    assert rc == 0, text.err
    return text.out


# ---------------------------------------------------------------------------- the two rules
def _geo(x, y=0.0):
    return (float(x), float(y), 10.0, 5.0, 0.0)


def test_label_studio_rule_by_hand():
    # Keyframes at 0 (A, on), 4 (B, on), 8 (C, off), 12 (D, on); a 16-frame video.
    keys = [Keyframe(4, _geo(40), True, "B"), Keyframe(0, _geo(0), True, "A"),
            Keyframe(8, _geo(80, 8), False, "C"), Keyframe(12, _geo(120), True, "D")]
    got = shown_boxes(keys, range(-1, 20), LABEL_STUDIO, end=16)
    assert sorted(got) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15]
    assert got[0] == (_geo(0), keys[1]) and got[4][1] is keys[0]
    assert got[2] == (_geo(20), None)                     # halfway from A to B
    assert got[6] == ((60.0, 4.0, 10.0, 5.0, 0.0), None)  # towards a disabled keyframe too
    assert got[8] == (_geo(80, 8), keys[2])                # a disabled keyframe shows itself
    assert got[15] == (_geo(120), None)                    # held after the last, to the end


def test_cvat_rule_by_hand():
    # Keyframes at 2 (A), 6 (outside), 9 (C); a task ending at frame 11.
    keys = [Keyframe(2, _geo(20), True, "A"), Keyframe(6, _geo(60), False, "B"),
            Keyframe(9, _geo(90), True, "C")]
    got = shown_boxes(keys, range(0, 14), CVAT, end=12)
    assert sorted(got) == [2, 3, 4, 5, 9, 10, 11]
    assert got[4] == (_geo(40), None)  # interpolated towards the outside keyframe
    assert got[11] == (_geo(90), None)


def test_rotation_and_angles():
    # Label Studio turns about the top-left corner, CVAT about the centre (clockwise, y down).
    assert np.allclose(enclosing_box((10, 10, 20, 10, 90), "corner"), (0, 10, 10, 30))
    assert np.allclose(enclosing_box((10, 10, 20, 10, 90), "centre"), (15, 5, 25, 25))
    assert enclosing_box((1, 2, 3, 4, 360), "corner") == (1, 2, 4, 6)
    # The shorter way round: 350° → 10° passes 0°.
    keys = [Keyframe(0, (0, 0, 4, 4, 350), True, "a"), Keyframe(2, (0, 0, 4, 4, 10), True, "b")]
    assert shown_boxes(keys, [1], LABEL_STUDIO, end=3)[1][0][4] % 360 == pytest.approx(0)
    with pytest.raises(AnnotationFileError, match="a second keyframe on frame 2"):
        shown_boxes(keys + [Keyframe(2, _geo(1), True, "c")], [1], CVAT, end=3)


# ---------------------------------------------------------------------------- Label Studio
def test_labelstudio_interpolated_tracks(run, ds, capsys):
    """Keyframes only where each actor starts and ends: every requested frame between gets
    Label Studio's interpolated box; frames before or after (a disabled last keyframe) none."""
    p = open_pending(run, ds)
    tasks = _tasks(run, capsys)
    assert all(t["data"]["claus_size"] == [W, H] for t in tasks)

    def ends(v, t):
        s, e = _tube_span(t)
        return [(s, True), (e, False)] if e > s else [(s, False)]

    path = run / "export.json"
    path.write_text(json.dumps(_ls_export(p, tasks, ends)))
    out = _import(run, [path], "labelstudio", capsys)
    want = _want(p, _shown_between)
    assert_same(_got(p), want)
    between = sum(1 for r in p.requests for f in r.frames for t in ds[r.video].tubes
                  if _tube_span(t)[0] < f < _tube_span(t)[1])
    assert between >= 5 and f"{between} boxes on requested frames are the tool's" in out
    assert any(not b for b in want.values())  # some requested frame before an actor appears
    # One region, one actor: a tube per ground-truth tube shown on a requested frame.
    state = imported(p)
    for r in p.requests:
        tubes = {b.tube for f in r.frames for b in state.boxes(r.video, f)}
        shown = [t for t in ds[r.video].tubes
                 if any(_shown_between(None, t, f) is not None for f in r.frames)]
        assert len(tubes) == len(shown) and min(tubes, default=1000) >= 1000
    # The keyframes on frames nobody asked for are reported, not labelled.
    assert "boxes on frames that were not requested" in out


def test_labelstudio_enabled_keyframe_holds_to_the_end(run, ds, capsys):
    p = open_pending(run, ds)
    tasks = _tasks(run, capsys)
    path = run / "export.json"
    # One enabled keyframe where the actor starts: the box stays on up to the video's end.
    path.write_text(json.dumps(_ls_export(p, tasks, lambda v, t: [(t.start, True)])))
    _import(run, [path], "labelstudio", capsys)
    assert_same(_got(p), _want(p, lambda v, t, f: t.box(t.start) if f >= t.start else None))


def test_labelstudio_interpolated_export_and_rotation(run, ds, capsys):
    """An export with Label Studio's interpolated frames (`auto` items) reads the same as the
    keyframes alone; a rotated box becomes the box enclosing it."""
    p = open_pending(run, ds)
    tasks = _tasks(run, capsys)
    doc = _ls_export(p, tasks, lambda v, t: [(t.start, True), (_tube_span(t)[1], False)])
    for task in doc:
        for res in task["annotations"][0]["result"]:
            a, b = res["value"]["sequence"]
            for f1 in range(a["frame"] + 1, b["frame"]):
                r = (f1 - a["frame"]) / (b["frame"] - a["frame"])
                res["value"]["sequence"].append(
                    {**a, "frame": f1, "auto": True,
                     **{k: a[k] + (b[k] - a[k]) * r for k in ("x", "y", "width", "height")}})
    path = run / "auto.json"
    path.write_text(json.dumps(doc))
    out = _import(run, [path], "labelstudio", capsys)
    assert_same(_got(p), _want(p, _shown_between))
    assert "interpolated sequence items" in out and "recomputed from the keyframes" in out
    # Every box turned by 90° about its top-left corner (x, y, w, h) → (x − h, y, x, y + w).
    for task in doc:
        for res in task["annotations"][0]["result"]:
            for item in res["value"]["sequence"]:
                item["rotation"] = 90
    path.write_text(json.dumps(doc))
    out = _import(run, [path], "labelstudio", capsys)
    assert "rotated boxes taken as the axis-aligned boxes enclosing them" in out

    def turned(v, t, f):
        b = _shown_between(v, t, f)
        if b is None:
            return None
        x1, y1, x2, y2 = b
        return np.clip([x1 - (y2 - y1), y1, x1, y1 + (x2 - x1)], 0, [W, H, W, H])

    want = {k: [(lab, b) for lab, b in bs if b[2] > b[0] and b[3] > b[1]]
            for k, bs in _want(p, turned).items()}
    assert_same(_got(p), want)


def test_labelstudio_several_annotations(run, ds, capsys):
    p = open_pending(run, ds)
    tasks = _tasks(run, capsys)

    def ends(v, t):
        return [(t.start, True), (t.start + len(t.boxes) - 1, False)]

    def annotations(task, result):
        # Ann (id 1, older, everything), Bob (id 2, newer, first actor only), a cancelled
        # newest one.
        return [
            {"id": 1, "completed_by": {"id": 1, "email": "ann@example.org"},
             "was_cancelled": False, "result": result,
             "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-01-05T10:09:00Z"},
            {"id": 2, "completed_by": 2, "was_cancelled": False, "result": result[:1],
             "created_at": "2026-01-05T11:00:00.5+01:00", "updated_at": None},
            {"id": 3, "completed_by": 1, "was_cancelled": True, "result": [],
             "created_at": "2026-01-06T10:00:00Z", "updated_at": "2026-01-06T10:00:00Z"}]

    path = run / "export.json"
    path.write_text(json.dumps(_ls_export(p, tasks, ends, annotations)))
    # Bob's (10:00:00.5 UTC) is older than Ann's update (10:09 UTC): Ann's is the latest.
    out = _import(run, [path], "labelstudio", capsys)
    assert "2 submitted annotations (#1 by ann@example.org, #2 by 2); used the latest, #1" in out
    full = _got(p)
    assert_same(full, _want(p, _shown_between))
    _import(run, [path], "labelstudio", capsys, "--annotator", "2")
    first = _got(p)
    assert first != full and all(len(b) <= 1 for b in first.values())
    _import(run, [path], "labelstudio", capsys, "--annotator", "Ann@Example.org")
    assert _got(p) == full
    # Nobody's annotation: the tasks answer for nothing.
    rc = annotate_main(["--run", str(run), "--file", str(path), "--format", "labelstudio",
                        "--annotator", "carol@example.org"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "requested frames are not in the file" in err
    rc = annotate_main(["--run", str(run), "--file", str(path), "--format", "ava-csv",
                        "--annotator", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--annotator applies to Label Studio" in err


# ---------------------------------------------------------------------------- CVAT
def _cvat_xml(p, video: str, size=None) -> str:
    """A "CVAT for video 1.1" export of one video task: a track per ground-truth tube with
    keyframes where it starts and ends, CVAT's interpolated boxes (keyframe="0") between, and
    an outside keyframe after the end (as CVAT writes them)."""
    v = p.dataset[video]
    w, h = size or (v.width, v.height)
    sx, sy = w / v.width, h / v.height
    out = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>",
           f"  <meta><task><id>3</id><name>{video}</name><size>{v.num_frames}</size>"
           "<mode>interpolation</mode><start_frame>0</start_frame>"
           f"<stop_frame>{v.num_frames - 1}</stop_frame><original_size><width>{w}</width>"
           f"<height>{h}</height></original_size></task></meta>"]
    for k, t in enumerate(v.tubes):
        s, e = _tube_span(t)
        out.append(f'  <track id="{k}" label="{p.dataset.classes[t.label]}" source="manual">')
        for f in range(s, min(e + 2, v.num_frames)):
            b = _lerp(t.box(s), t.box(e), (min(f, e) - s) / max(e - s, 1))
            b = b * [sx, sy, sx, sy]
            out.append(f'    <box frame="{f}" keyframe="{int(f in (s, e, e + 1))}" '
                       f'outside="{int(f > e)}" occluded="0" xtl="{b[0]:.2f}" '
                       f'ytl="{b[1]:.2f}" xbr="{b[2]:.2f}" ybr="{b[3]:.2f}" z_order="0"></box>')
        out.append("  </track>")
    out.append("</annotations>")
    return "\n".join(out) + "\n"


def _shown_between(v, t, f):
    s, e = _tube_span(t)
    return None if not s <= f <= e else _lerp(t.box(s), t.box(e), (f - s) / max(e - s, 1))


def test_cvat_video_interpolated_tracks(run, ds, capsys):
    p = open_pending(run, ds)
    files = []
    for r in p.requests:
        files.append(run / f"task{len(files)}.xml")
        files[-1].write_text(_cvat_xml(p, r.video))
    out = _import(run, files, "cvat-xml", capsys)
    want = _want(p, _shown_between)
    assert_same(_got(p), want, atol=0.011)  # the file holds 2 decimals
    assert "boxes on requested frames are the tool's interpolation" in out
    # original_size in another scale (a task made from a resized video): scaled back.
    files[0].write_text(_cvat_xml(p, p.requests[0].video, size=(3 * W, 2 * H)))
    _import(run, files, "cvat-xml", capsys)
    assert_same(_got(p), want, atol=0.011)


# ---------------------------------------------------------------------------- predictions
def test_prediction_tracks_accepted_give_one_actor_each(run, ds, capsys, monkeypatch):
    """The model's tubes go out as one track each (a keyframe on every requested frame the
    tube spans, the last one ending it); accepting them in Label Studio gives one actor per
    tube with exactly those boxes."""
    p = open_pending(run, ds)

    def fake_predict(pending, **kw):  # the ground truth as the "model's" tubes
        out = {}
        for r in pending.requests:
            v = pending.dataset[r.video]
            tracks = [PredictedTrack(t.label, 0.9, {f: tuple(map(float, t.box(f)))
                                                    for f in r.frames if t.box(f) is not None})
                      for t in v.tubes]
            out[r.video] = [t for t in tracks if t.boxes]
        return out

    monkeypatch.setattr("claus.annotation.predictions.predict_requests", fake_predict)
    assert select_main(["--run", str(run), "--format", "labelstudio"]) == 0
    capsys.readouterr()
    tasks = json.loads((p.folder / "export" / "labelstudio" / "tasks.json").read_text())
    n_tubes = 0
    for task in tasks:
        (pred,) = task["predictions"]
        v = ds[task["data"]["claus_video"]]
        for res in pred["result"]:
            seq = res["value"]["sequence"]
            assert [x["enabled"] for x in seq] == [True] * (len(seq) - 1) + [False]
            assert {x["frame"] - 1 for x in seq} <= set(p.requested()[v.name])
            n_tubes += 1
        # Accepting the predictions: the annotation's result is the prediction's.
        task["annotations"] = [{"id": 1, "completed_by": 1, "was_cancelled": False,
                                "result": pred["result"], "updated_at": "2026-01-05T10:00Z"}]
    (run / "accepted.json").write_text(json.dumps(tasks))
    out = _import(run, [run / "accepted.json"], "labelstudio", capsys)
    assert "not requested" not in out
    got = imported(p)
    assert canon(got) == canon(expected(p))
    assert_tracks_linked(p, got)
    new = {(r.video, b.tube) for r in p.requests for f in r.frames for b in got.boxes(r.video, f)}
    assert len(new) == n_tubes


# ---------------------------------------------------------------------------- videos
def test_encode_for_label_studio(run, ds, capsys, monkeypatch):
    av = pytest.importorskip("av")
    for name in ("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", "LOCAL_FILES_DOCUMENT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    p = open_pending(run, ds)
    tasks = _tasks(run, capsys, "--encode")
    videos = run / "videos"
    files = sorted(q.relative_to(videos).as_posix() for q in videos.rglob("*.mp4"))
    assert files == sorted(f"{r.video}.mp4" for r in p.requests)  # only this round's
    readme = (p.folder / "export" / "labelstudio" / "README.md").read_text()
    assert "LOCAL_FILES_SERVING_ENABLED=true" in readme
    assert f"LOCAL_FILES_DOCUMENT_ROOT={run.resolve()}\n" in readme
    assert f"`{videos.resolve()}`" in readme and "Add Source Storage → Local files" in readme
    for task in tasks:
        name = task["data"]["claus_video"]
        v = ds[name]
        assert task["data"]["video"] == f"/data/local-files/?d=videos/{name}.mp4"
        assert task["data"]["claus_size"] == [W + 1, H + 1] and task["data"]["fps"] == 24
        with av.open(str(videos / f"{name}.mp4")) as c:
            s = c.streams.video[0]
            assert (s.frames, s.average_rate) == (v.num_frames, 24)
            frames = np.stack([fr.to_ndarray(format="rgb24") for fr in c.decode(s)])
        assert frames.shape == (v.num_frames, H + 1, W + 1, 3)
        ref = ds.read_frames(name, range(v.num_frames)).astype(np.float64)
        assert np.abs(frames[:, :H, :W] - ref).mean() < 6  # frame i is claus frame i
        assert frames[:, H].mean() < 12 and frames[:, :, W].mean() < 12  # the black padding
    # Written once: a second export keeps the files.
    stamp = {q: q.stat().st_mtime_ns for q in videos.rglob("*.mp4")}
    _tasks(run, capsys, "--encode")
    assert {q: q.stat().st_mtime_ns for q in videos.rglob("*.mp4")} == stamp
    # Percentages of the padded size, as Label Studio gives them, are the same pixels.
    path = run / "export.json"
    path.write_text(json.dumps(_ls_export(
        p, tasks, lambda v, t: [(t.start, True), (_tube_span(t)[1], False)])))
    _import(run, [path], "labelstudio", capsys)
    assert_same(_got(p), _want(p, _shown_between))
    # Another frame rate: encoded again, tasks at that rate; a URL template of one's own.
    tasks = _tasks(run, capsys, "--encode", str(run / "elsewhere"), "--fps", "25",
                   "--video-url", "http://localhost:8081/{file}")
    assert tasks[0]["data"]["fps"] == 25
    assert tasks[0]["data"]["video"] == f"http://localhost:8081/{tasks[0]['data']['claus_video']}.mp4"
    with av.open(str(run / "elsewhere" / f"{tasks[0]['data']['claus_video']}.mp4")) as c:
        assert c.streams.video[0].average_rate == 25
    readme = (p.folder / "export" / "labelstudio" / "README.md").read_text()
    assert "python -m claus.annotation.serve" in readme
    # Label Studio's document root, from its variable: the URLs are the paths below it.
    monkeypatch.setenv("LOCAL_FILES_DOCUMENT_ROOT", str(run.parent))
    tasks = _tasks(run, capsys, "--encode")
    assert tasks[0]["data"]["video"] == (f"/data/local-files/?d={run.name}/videos/"
                                         f"{tasks[0]['data']['claus_video']}.mp4")
    assert select_main(["--run", str(run), "--format", "labelstudio", "--encode",
                        "--no-predictions", "--document-root", str(run / "videos" / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not under" in err and "--encode DIR" in err


def test_encode_for_cvat_video_tasks(run, ds, capsys):
    pytest.importorskip("av")
    p = open_pending(run, ds)
    assert select_main(["--run", str(run), "--format", "cvat", "--encode"]) == 0
    out = capsys.readouterr().out
    assert "cvat-xml for video tasks" in out
    readme = (p.folder / "export" / "cvat" / "README.md").read_text()
    for r in p.requests:
        assert f"| `{r.video}` | `{(run / 'videos' / r.video).resolve()}.mp4` |" in readme
    assert '"CVAT for video 1.1"' in readme and "--format cvat-xml" in readme
    # CVAT reports the encoded (padded) size as original_size: nothing to scale.
    files = []
    for r in p.requests:
        files.append(run / f"task{len(files)}.xml")
        xml = _cvat_xml(p, r.video).replace(f"<width>{W}</width><height>{H}</height>",
                                            f"<width>{W + 1}</width><height>{H + 1}</height>")
        files[-1].write_text(xml)
    _import(run, files, "cvat-xml", capsys)
    assert_same(_got(p), _want(p, _shown_between), atol=0.011)


def test_select_flag_errors(run, capsys):
    assert select_main(["--run", str(run), "--format", "jsonl", "--encode"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --encode/--fps:") and err.count("\n") == 1
    assert select_main(["--run", str(run), "--format", "labelstudio", "--fps", "0"]) == 2
    assert "--fps: must be positive" in capsys.readouterr().err


def test_serve_sends_cors_and_ranges(tmp_path):
    data = bytes(range(256)) * 40
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "v.mp4").write_bytes(data)
    server = make_server(tmp_path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/a/v.mp4"
    try:
        def get(headers=None, method="GET"):
            req = urllib.request.Request(base, headers=headers or {}, method=method)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, dict(r.headers), r.read()
            except urllib.error.HTTPError as e:
                return e.code, dict(e.headers), b""

        status, head, body = get({"Range": "bytes=100-199"})
        assert status == 206 and body == data[100:200]
        assert head["Content-Range"] == f"bytes 100-199/{len(data)}"
        assert head["Access-Control-Allow-Origin"] == "*" and head["Content-Type"] == "video/mp4"
        assert get({"Range": "bytes=-10"})[2] == data[-10:]
        assert get({"Range": "bytes=10000-"})[2] == data[10000:]
        assert get({"Range": f"bytes={len(data)}-"})[0] == 416
        status, head, body = get()
        assert status == 200 and body == data and head["Access-Control-Allow-Origin"] == "*"
        status, head, _ = get(method="OPTIONS")
        assert status == 204 and "Range" in head["Access-Control-Allow-Headers"]
    finally:
        server.shutdown()
        server.server_close()


def test_encode_keeps_frame_order_past_the_first_chunk(tmp_path):
    """Frames are read and encoded 64 at a time: frame i of the file is claus frame i in every
    chunk. Each source frame shows its own number in binary (8 black or white blocks), read
    back from the decoded file; an odd size (padded) and a last chunk that is not full."""
    av = pytest.importorskip("av")
    from fractions import Fraction
    from types import SimpleNamespace

    from claus.annotation.encode import encode_videos
    from claus.data import Video, VideoDataset
    from claus.data.frames import ArrayFrames

    n, bits = 100, 7  # chunks of 64 and 36 frames

    def block(k):  # the pixels of bit k: 10 × 20, 2 px inside a 12-px cell
        return slice(12, 32), slice(4 + 12 * k, 14 + 12 * k)

    src = np.full((n, H, W, 3), 96, np.uint8)
    for i in range(n):
        for k in range(bits):
            src[i][block(k)] = 255 if i >> k & 1 else 0
    v = Video("clips/long", 0, n, H, W, "train", source=ArrayFrames(src))
    ds_long = VideoDataset("custom", ["a"], [v])
    # encode_videos reads only the waiting round's dataset and requested videos.
    pending = SimpleNamespace(dataset=ds_long, requests=[SimpleNamespace(video=v.name)])
    enc = encode_videos(pending, tmp_path / "videos", fps=25)[v.name]
    assert not enc.reused and (enc.width, enc.height) == (W + 1, H + 1)
    with av.open(str(enc.path)) as c:
        s = c.streams.video[0]
        assert (s.frames, s.average_rate) == (n, Fraction(25))
        got = np.stack([fr.to_ndarray(format="rgb24") for fr in c.decode(s)])
    assert got.shape == (n, H + 1, W + 1, 3)
    shown = [sum(1 << k for k in range(bits) if got[i][block(k)].mean() > 128)
             for i in range(n)]
    assert shown == list(range(n))
    assert np.abs(got[:, :H, :W].astype(np.float64) - src).mean() < 4
    # Current files are kept: a second call encodes nothing.
    assert encode_videos(pending, tmp_path / "videos", fps=25)[v.name].reused
    # The index (moov) before the frames (mdat), so playback starts before the whole file is
    # fetched: the MP4's top-level boxes in file order.
    data, boxes, pos = enc.path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        boxes.append(data[pos + 4:pos + 8].decode("latin-1"))
        pos += size if size >= 8 else len(data)
    assert {"moov", "mdat"} <= set(boxes) and boxes.index("moov") < boxes.index("mdat"), boxes


def test_predict_requests_lists_several_tracks_best_first(run, ds, monkeypatch):
    """Several actors in a video: one track each, best score first, each with its own boxes
    on the requested frames. The model's output is a stand-in: two blobs of constant
    confidence and one class, through the real detector (each track's score is confidence ×
    class probability; both placements of the better blob are tried), then tubes of two
    classes given by a stand-in detector in label order, not score order."""
    from claus.annotation import predict_requests
    from claus.eval import VideoPrediction

    p = open_pending(run, ds)
    C = ds.num_classes
    cls_prob = np.full(C, 0.3 / (C - 1), np.float32)
    cls_prob[1] = 0.7
    region = {"top": (slice(5, 15), slice(10, 30)), "bottom": (slice(25, 40), slice(60, 90))}
    edges = {"top": (10.0, 5.0, 30.0, 15.0), "bottom": (60.0, 25.0, 90.0, 40.0)}  # x1 y1 x2 y2
    for conf in ({"top": 0.6, "bottom": 0.9}, {"top": 0.9, "bottom": 0.6}):
        def predict(model, d, idx, conf=conf, **kw):
            for vi in idx:
                v = d[vi]
                fg = np.zeros((v.num_frames, v.height, v.width), np.float32)
                for b, c in conf.items():
                    fg[(slice(None), *region[b])] = c
                yield vi, VideoPrediction(fg, np.tile(cls_prob, (v.num_frames, 1)),
                                          np.ones(v.num_frames, bool))

        monkeypatch.setattr("claus.eval.pipeline.predict_videos", predict)
        got = predict_requests(p)
        assert set(got) == {r.video for r in p.requests}
        for r in p.requests:
            order = sorted(conf, key=conf.get, reverse=True)
            want = [(1, pytest.approx(conf[b] * 0.7, rel=1e-5),
                     {f: edges[b] for f in r.frames}) for b in order]
            assert [(t.label, t.score, t.boxes) for t in got[r.video]] == want, r.video

    # Tubes {label: [(rows of frame (1-based), x1, y1, x2, y2 inclusive), score]}, by label.
    def tube(n, box):
        return np.array([[f + 1, *box] for f in range(n)], np.float64)

    def detect(pred, height, width, video_index, settings, smoothed=None):
        n = len(pred.fg)
        return None, {0: [(tube(n, (0, 0, 9, 9)), 0.2)],
                      1: [(tube(n, (20, 5, 29, 14)), 0.9), (tube(n, (50, 30, 200, 44)), 0.5)]}

    monkeypatch.setattr("claus.eval.pipeline.detect_video", detect)
    got = predict_requests(p, fg_threshold=0.0)  # thresholds in [0, 1)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"fg_threshold must lie in \[0, 1\)"):
            predict_requests(p, fg_threshold=bad)
    for r in p.requests:
        want = [(1, 0.9, (20.0, 5.0, 30.0, 15.0)), (1, 0.5, (50.0, 30.0, W, H)),
                (0, 0.2, (0.0, 0.0, 10.0, 10.0))]  # edges, inside the frame
        assert [(t.label, t.score, t.boxes) for t in got[r.video]] == [
            (lab, score, dict.fromkeys(r.frames, box)) for lab, score, box in want]


def test_serve_command_line(tmp_path, capsys, monkeypatch):
    """`python -m claus.annotation.serve FOLDER`: serves FOLDER at the address it prints
    (127.0.0.1 and port 8081 unless --host / --port say otherwise), stops on Ctrl-C with exit
    status 0 and its socket closed, and ends a bad folder or flag with one error line. Run in
    a thread or with an interrupted serve_forever, so nothing waits for Ctrl-C."""
    from claus.annotation import serve

    data = bytes(range(256)) * 4
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "v.mp4").write_bytes(data)
    made, real = [], serve.make_server

    def recording(folder, host, port):
        made.append((folder, host, port, real(folder, host, port)))
        return made[-1][3]

    monkeypatch.setattr(serve, "make_server", recording)
    # A real server on a free port (--port 0), stopped from here.
    rc = []

    def command():
        try:
            rc.append(serve.main([str(tmp_path), "--port", "0"]))
        except BaseException as e:  # noqa: BLE001  (reported below, not lost in the thread)
            rc.append(e)

    thread = threading.Thread(target=command, daemon=True)
    thread.start()
    out, t0 = "", time.monotonic()
    while thread.is_alive() and not out.endswith("\n") and time.monotonic() - t0 < 10:
        out += capsys.readouterr().out
        time.sleep(0.01)
    assert made and out.endswith("\n"), f"the server did not start: {out!r}, {rc}"
    server = made[-1][3]
    port = server.server_address[1]
    assert made[-1][:3] == (str(tmp_path), "127.0.0.1", 0)
    assert out == (f"serving {tmp_path.resolve()} at http://127.0.0.1:{port}/ (CORS, byte "
                   "ranges); Ctrl-C stops\n")
    req = urllib.request.Request(f"http://127.0.0.1:{port}/a/v.mp4",
                                 headers={"Range": "bytes=-7"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 206 and r.read() == data[-7:]
    server.shutdown()
    thread.join(10)
    assert not thread.is_alive() and rc == [0] and server.socket.fileno() == -1

    # Defaults and Ctrl-C: the server is made for 127.0.0.1:8081 (bound here to a free port,
    # 8081 may be in use), and an interrupt ends serve_forever.
    def interrupted(folder, host, port):
        made.append((folder, host, port, real(folder, host, 0)))

        def serve_forever():
            raise KeyboardInterrupt

        made[-1][3].serve_forever = serve_forever
        return made[-1][3]

    monkeypatch.setattr(serve, "make_server", interrupted)
    assert serve.main([str(tmp_path)]) == 0
    assert made[-1][:3] == (str(tmp_path), "127.0.0.1", 8081)
    assert made[-1][3].socket.fileno() == -1
    assert serve.main([str(tmp_path), "--host", "localhost", "--port", "9"]) == 0
    assert made[-1][:3] == (str(tmp_path), "localhost", 9)
    capsys.readouterr()

    # Errors: one line, exit status 2, no traceback.
    monkeypatch.setattr(serve, "make_server", real)
    assert serve.main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "is not a folder" in err
    with pytest.raises(SystemExit) as e:
        serve.main([str(tmp_path), "--port", "eighty"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: argument --port: invalid int value: 'eighty'")

    # --help: what the command does (the module's docstring) and a line for every flag.
    with pytest.raises(SystemExit) as e:
        serve.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for line in serve.__doc__.strip().splitlines():
        assert line in out
    for flag in ("folder", "--host HOST", "--port PORT"):
        assert re.search(rf"^  {flag} +\S", out, re.M), flag


def test_encode_leaves_an_unreadable_video_out(tmp_path):
    """A video whose frames fail to read past the first chunk: no file (not even part of one),
    the ledger's "export" stage names it with the reason, the other video is encoded; with
    every video unreadable the export fails."""
    pytest.importorskip("av")
    from types import SimpleNamespace

    from claus.annotation.encode import encode_videos
    from claus.data import FrameReadError, Video, VideoDataset
    from claus.data.faults import BadVideos, TooManyBadVideos
    from claus.data.frames import ArrayFrames

    class CutAt64(ArrayFrames):
        def read(self, frames):
            if max(frames) >= 64:
                raise FrameReadError("frame 64 is truncated", path="/data/cut/00065.jpg")
            return super().read(frames)

    frames = np.zeros((70, 8, 10, 3), np.uint8)
    good = Video("clips/good", 0, 70, 8, 10, "train", source=ArrayFrames(frames))
    cut = Video("clips/cut", 0, 70, 8, 10, "train", source=CutAt64(frames))
    ds2 = VideoDataset("custom", ["a"], [good, cut])
    pending = SimpleNamespace(dataset=ds2, requests=[SimpleNamespace(video="clips/cut"),
                                                     SimpleNamespace(video="clips/good")])
    bad = BadVideos.of(ds2, 0.5)
    with pytest.warns(UserWarning, match="'clips/cut' left out .*frame 64 is truncated"):
        enc = encode_videos(pending, tmp_path / "v", bad=bad)
    assert list(enc) == ["clips/good"] and enc["clips/good"].path.is_file()
    assert sorted(p.name for p in (tmp_path / "v" / "clips").iterdir()) == ["good.mp4"]
    (entry,) = bad.stage("export").values()
    assert (entry.name, entry.file) == ("clips/cut", "/data/cut/00065.jpg")
    assert "frame 64 is truncated" in entry.reason
    alone = SimpleNamespace(dataset=ds2, requests=[SimpleNamespace(video="clips/cut")])
    with pytest.raises(TooManyBadVideos), pytest.warns(UserWarning):
        encode_videos(alone, tmp_path / "w", bad=BadVideos.of(ds2, 1.0))


def test_labelstudio_videos_encoded_at_the_document_root(run, capsys, monkeypatch):
    """Videos encoded into Label Studio's document root itself: the URLs are the files'
    paths below it, with nothing before them."""
    pytest.importorskip("av")
    for name in ("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", "LOCAL_FILES_DOCUMENT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    videos = run / "videos"
    tasks = _tasks(run, capsys, "--encode", str(videos), "--document-root", str(videos))
    assert tasks
    for t in tasks:
        assert t["data"]["video"] == f"/data/local-files/?d={t['data']['claus_video']}.mp4"
    # The README says what the tasks' URLs are, here and with the videos in a folder below.
    readme = open_pending(run).folder / "export" / "labelstudio" / "README.md"
    assert "Each task's video is `/data/local-files/?d=<video>.mp4`." in readme.read_text()
    tasks = _tasks(run, capsys, "--encode", str(videos), "--document-root", str(run))
    assert tasks[0]["data"]["video"] == (
        f"/data/local-files/?d=videos/{tasks[0]['data']['claus_video']}.mp4")
    assert "Each task's video is `/data/local-files/?d=videos/<video>.mp4`." in (
        readme.read_text())


def test_serve_on_a_port_in_use_is_one_line(tmp_path, capsys):
    """A port already taken is the user's to change: one line, exit 2, no traceback."""
    import socket

    from claus.annotation.serve import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert main([str(tmp_path), "--port", str(s.getsockname()[1])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --host 127.0.0.1 --port ")
