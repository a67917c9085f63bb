"""Tests written for mutants that survived `bench/mutation.sh` (see bench/MUTATION.md).

Each test names the behaviour it pins; the comment above it names the mutants (mutmut's names)
it was written against. Fast tests only: they run in CI and in the mutation groups.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from claus import rounds
from claus.annotation import (
    AnnotationFileError,
    export_labelstudio,
    import_files,
    open_pending,
    read_ava_csv,
    read_cvat_images,
    read_cvat_video,
    read_labelstudio,
)
from claus.annotation.cvat import cvat_labels
from claus.annotation.encode import DEFAULT_FPS, task_fps
from claus.annotation.jsonl import request_lines
from claus.annotation.pending import frame_source, safe_relpath
from claus.annotation.serve import _Slice, make_server
from claus.config import DataMovedError, DatasetSpec
from claus.data import LabelState, Video, VideoDataset
from claus.data.faults import BadVideos, TooManyBadVideos
from claus.data.frames import ImageFolderFrames, VideoFileFrames
from claus.eval import (
    ap_from_tp,
    components,
    frame_ap,
    frame_detections,
    pipeline,
    video_ap,
    video_map_summary,
)
from claus.eval.inference import VideoPrediction
from claus.eval.pipeline import DetectionSettings, temporal_smooth, video_class
from claus.rounds import (
    AwaitingLabels,
    DamagedRunError,
    RunMismatchError,
    _adopt_round0,
    config_diff,
    default_trainer,
    initial_labels,
    is_rounds_run,
    read_run_config,
    relocate_run,
    run_experiment,
    run_rounds,
    verify_round,
)
from claus.run_folder import RunFolder
from claus.selection import FrameScores, stitch_clip_stats
from claus.selection.pool import PoolScores
from claus.selection.strategies import (
    Selection,
    allocate_clusters,
    default_videos_per_round,
    equidistant_frames,
    select_round,
)

import tests.test_annotation as ta
import tests.test_rounds as tr
import tests.test_training as tt
from tests.test_annotation import run, waiting  # noqa: F401  (fixtures: a run awaiting labels)

# ---------------------------------------------------------------------------- CVAT readers


def _boxes(ann) -> list[tuple]:
    return sorted((b.video, b.frame, b.label, b.box, b.track, b.keyframe) for b in ann.boxes)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _video_case(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    with_boxes = {g[0] for g in ta.gt(p)}
    r = next(q for q in p.requests if q.video in with_boxes)
    xml = ta._cvat_video_xml(p, r.video)
    return p, r, xml, read_cvat_video(_write(run, "task.xml", xml), p)


# cvat.x__task_meta__mutmut_17 (project/tasks/task), _task_meta(root, None)
def test_cvat_job_and_one_task_project_exports_read_like_a_task(run, ds):  # noqa: F811
    p, r, xml, want = _video_case(run, ds)
    assert want.boxes and want.covered
    job = xml.replace("<task>", "<job>").replace("</task>", "</job>")
    project = xml.replace("<task>", "<project><tasks><task>").replace(
        "</task>", "</task></tasks></project>")
    for name, text in (("job.xml", job), ("project.xml", project)):
        got = read_cvat_video(_write(run, name, text), p)
        assert _boxes(got) == _boxes(want) and got.covered == want.covered, name
    two = xml.replace("<task>", "<project><tasks><task>").replace(
        "</task>", "</task><task><id>4</id></task></tasks></project>")
    with pytest.raises(AnnotationFileError, match=r"two\.xml: a project export with 2 tasks"):
        read_cvat_video(_write(run, "two.xml", two), p)
    none = xml.replace("<task>", "<other>").replace("</task>", "</other>")
    with pytest.raises(AnnotationFileError, match=r"none\.xml: no <task> in <meta>"):
        read_cvat_video(_write(run, "none.xml", none), p)


# cvat.x__int_text__mutmut_4 / _5: an absent tag and an empty one take the default
def test_cvat_absent_or_blank_meta_numbers_take_their_defaults(run, ds):  # noqa: F811
    p, r, xml, want = _video_case(run, ds)
    n = ds[r.video].num_frames
    no_stop = "\n".join(ln for ln in xml.splitlines() if "<stop_frame>" not in ln)
    for name, text in (("no_stop.xml", no_stop),
                       ("blank.xml", no_stop.replace(f"<size>{n}</size>", "<size> </size>")),
                       ("empty.xml", no_stop.replace(f"<size>{n}</size>", "<size/>"))):
        got = read_cvat_video(_write(run, name, text), p)
        assert _boxes(got) == _boxes(want) and got.covered == want.covered, name


# cvat.x_read_cvat_video__mutmut_12: a file with tracks is a video task even with <image>s in it
def test_cvat_video_file_with_stray_images_is_read(run, ds):  # noqa: F811
    p, r, xml, want = _video_case(run, ds)
    mixed = xml.replace("</annotations>",
                        '<image id="0" name="x/000001.jpg" width="4" height="4"/></annotations>')
    got = read_cvat_video(_write(run, "mixed.xml", mixed), p)
    assert _boxes(got) == _boxes(want)


# cvat.x__match_video__mutmut_7: a Windows <source> path names the video
def test_cvat_video_found_from_a_windows_source_path(run, ds):  # noqa: F811
    p, r, xml, want = _video_case(run, ds)
    win = "C:\\exports\\" + r.video.replace("/", "\\") + ".mp4"
    text = xml.replace(f"<name>{r.video}</name>", f"<name>task 3</name><source>{win}</source>")
    got = read_cvat_video(_write(run, "win.xml", text), p)
    assert not got.unknown_videos and _boxes(got) == _boxes(want)


# cvat.x_read_cvat_images__mutmut_122 / _123 (the shapes counted), _71 (the unknown name);
# at 4fa9351: _116 (polyline), _98 (a height of 0)
def test_cvat_images_count_non_box_shapes_and_name_unknown_videos(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    r = p.requests[0]
    v = ds[r.video]
    f = r.frames[0]
    # Every shape CVAT draws but a box is counted (a <tag> is no shape).
    shapes = ('<polygon label="a" points="0,0;1,1;0,1"/><mask label="a" rle="1" left="0" '
              'top="0" width="1" height="1"/><ellipse label="a" cx="1" cy="1" rx="1" ry="1"/>'
              '<polyline label="a" points="0,0;1,1"/><points label="a" points="1,1"/>'
              '<cuboid label="a"/><skeleton label="a"/><tag label="a"/>')
    text = (f'<annotations><image id="0" name="{r.video}/{f:06d}.jpg" width="{v.width}" '
            f'height="{v.height}">{shapes}</image></annotations>')
    got = read_cvat_images(_write(run, "shapes.xml", text), p)
    assert got.notes == [f"{run / 'shapes.xml'}: 7 non-box shapes ignored"]
    for size in ('width="0" height="4"', 'width="4" height="0"'):
        flat = (f'<annotations><image id="0" name="{r.video}/{f:06d}.jpg" {size}/>'
                '</annotations>')
        with pytest.raises(AnnotationFileError, match="bad size"):
            read_cvat_images(_write(run, "flat.xml", flat), p)
    assert got.covered == {r.video: {f}} and not got.boxes
    bare = f'<annotations><image id="0" name="{f:06d}.jpg" width="4" height="4"/></annotations>'
    got = read_cvat_images(_write(run, "bare.xml", bare), p, video="no/such_video")
    assert got.unknown_videos == ["no/such_video"] and not got.covered


# cvat.x_read_cvat_video__mutmut_244: task frames are 0..size-1
def test_cvat_video_box_one_past_the_task_end_is_refused(run, ds):  # noqa: F811
    p, r, xml, want = _video_case(run, ds)
    n = ds[r.video].num_frames
    past = xml.replace("</track>", f'<box frame="{n}" keyframe="1" outside="0" occluded="0" '
                       'xtl="1" ytl="1" xbr="3" ybr="3" z_order="0"/></track>', 1)
    with pytest.raises(AnnotationFileError, match=rf"frame {n} outside the task's {n} frames"):
        read_cvat_video(_write(run, "past.xml", past), p)


# cvat.x_cvat_labels__mutmut_*: the label list is CVAT's raw label JSON, key for key
def test_cvat_labels_are_cvats_raw_label_list():
    assert cvat_labels(["run", "jump"]) == [
        {"name": c, "type": "rectangle", "attributes": [
            {"name": "track", "mutable": False, "input_type": "number", "default_value": "0",
             "values": ["0", "999", "1"]}]} for c in ("run", "jump")]


# labelstudio.x__when__mutmut_19: a timestamp without a zone is UTC, comparable with "...Z"
def test_labelstudio_latest_annotation_with_a_naive_timestamp(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    tasks = json.loads((export_labelstudio(p, run / "ls", predictions=False)
                        / "tasks.json").read_text())
    export = ta._labelstudio_export(p, tasks)
    task = next(t for t in export if t["annotations"][1]["result"])
    video = task["data"]["claus_video"]
    # A later annotation (10:06 naive = UTC, after 10:05Z) that erased every box.
    task["annotations"].append({"id": 3, "was_cancelled": False, "result": [],
                                "updated_at": "2024-05-01T10:06:00"})
    path = _write(run, "ls.json", json.dumps(export))
    got = read_labelstudio(path, p)
    assert video in got.covered and not [b for b in got.boxes if b.video == video]
    task["annotations"][2]["updated_at"] = "2024-05-01T10:04:00"  # now the earlier one
    got = read_labelstudio(_write(run, "ls2.json", json.dumps(export)), p)
    assert [b for b in got.boxes if b.video == video]


# ---------------------------------------------------------------------------- selection


# strategies.xǁSelectionǁfrom_json__mutmut_8 / _17 / _18 / _21
def test_selection_json_round_trip_and_old_files():
    sel = Selection(frames={"a/v1": [4, 1], "b/v2": [0]}, scores={"a/v1": [0.5, None],
                                                               "b/v2": [0.25]},
                    video_scores={"a/v1": 0.75, "b/v2": None}, clusters={"a/v1": 1, "b/v2": 0},
                    cost=5)
    back = Selection.from_json(json.loads(json.dumps(sel.to_json())))
    assert back == sel
    # A selection.json holding only frames (an older file) reads with empty extras.
    old = Selection.from_json({"frames": {"a/v1": ["3"]}})
    assert old == Selection(frames={"a/v1": [3]})
    assert old.scores == {} and old.video_scores == {} and old.clusters == {} and old.cost == 0


# strategies.x_equidistant_frames__mutmut_35: two segments nearest to one free frame
def test_equidistant_frames_never_repeat_a_frame():
    # Free frames 0, 1 and 9; segment centres 1.67, 5 and 8.33: frame 1 is nearest to the first
    # two, so the second takes the next nearest free frame (0 before 9 at an equal distance).
    assert equidistant_frames(10, set(range(2, 9)), 3) == [1, 0, 9]
    assert equidistant_frames(10, set(range(2, 9)), 5) == [1, 0, 9]  # only three are free


# strategies.x_default_videos_per_round__mutmut_3: an empty pool takes no video
def test_default_videos_per_round_of_an_empty_pool():
    assert default_videos_per_round(40, [], []) == 0
    assert default_videos_per_round(0, [100], [1.0]) == 1


# ---------------------------------------------------------------------------- eval


# pipeline.x_video_class__mutmut_3: the "frame" scope is the plain mean over covered frames
def test_video_class_scopes_differ():
    # Frames 0-3 hold the actor (class 1); frames 4-9 are idle (class 0): the frame mean says
    # 0, the foreground-weighted video class says 1.
    fg = np.zeros((10, 8, 8), np.float32)
    fg[:4, 2:6, 2:6] = 0.9
    cls = np.tile(np.array([0.8, 0.1, 0.1], np.float32), (10, 1))
    cls[:4] = [0.1, 0.8, 0.1]
    pred = VideoPrediction(fg=fg, cls=cls, covered=np.ones(10, bool))
    frame = video_class(pred, DetectionSettings(class_scope="frame", smooth=0))
    video = video_class(pred, DetectionSettings(class_scope="video", smooth=0))
    np.testing.assert_allclose(frame, cls.mean(0), rtol=1e-6)
    assert np.argmax(frame) == 0 and np.argmax(video) == 1


def _oracle_at(ds, indices, scale: int = 1):
    """Ground-truth masks as predictions (at 1/scale of the frame size), the true class."""
    for vi, p in tt._oracle(ds, indices):
        yield vi, VideoPrediction(p.fg[:, ::scale, ::scale].copy(), p.cls, p.covered)


# pipeline.x_evaluate_split__mutmut_6 / _39 / _57 / _58 / _102 / _137 / _140 / _156 / _249
def test_evaluate_split_forwards_settings_and_reports_every_key(ds, monkeypatch):
    calls = []

    from claus.data.clips import ClipGeometry, default_geometry

    def predict(model, d, idx, **kw):
        calls.append(kw)
        return _oracle_at(d, idx, scale=kw["geometry"].size or 1)

    monkeypatch.setattr(pipeline, "predict_videos", predict)
    test = ds.split_indices("test")
    bad = BadVideos.of(ds)
    res = pipeline.evaluate_split(None, ds, "test", bad=bad)
    assert calls[-1] == {"geometry": default_geometry(), "batch_size": 32, "device": "cpu",
                         "workers": 0, "amp": True, "progress": False, "bad": bad}
    assert set(res) == {"protocol", "split", "videos", "frames", "f-mAP@0.5", "v-mAP@0.1",
                        "v-mAP@0.2", "v-mAP@0.3", "v-mAP@0.5", "v-mAP@0.5:0.95", "accuracy",
                        "per_class", "settings", "seconds"}
    assert (res["protocol"], res["split"], res["videos"]) == ("act", "test", len(test))
    assert res["frames"] == sum(ds[i].num_frames for i in test)
    assert set(res["per_class"]) == {"f-AP@0.5", "v-AP@0.5"}
    assert all(len(v) == ds.num_classes for v in res["per_class"].values())
    assert isinstance(res["seconds"], float) and res["accuracy"] == 100.0
    # The localization protocol on predictions at half the frame size (scaled back to it).
    loc = pipeline.evaluate_split(None, ds, "test", protocol="localization", T=4, stride=1,
                                  size=2)
    assert calls[-1]["geometry"] == ClipGeometry(T=4, stride=1, size=2)
    assert {"f-mAP@0.1", "v-mAP@0.3", "per_class"} <= set(loc) and "v-mAP@0.5:0.95" not in loc
    assert loc["f-mAP@0.5"] > 80 and set(loc["per_class"]) == {"f-AP@0.5", "v-AP@0.5"}


# ---------------------------------------------------------------------------- annotation, more


# serve.x_Slice_read__mutmut_15, RangeHandler.do_OPTIONS__mutmut_18, send_head__mutmut_28
def test_serve_slice_cors_headers_and_a_missing_file(tmp_path):
    s = _Slice(io.BytesIO(b"abcdefgh"), 5)
    assert s.read(2) == b"ab" and s.read(0) == b"" and s.read(10) == b"cde" and s.read() == b""
    (tmp_path / "a").mkdir()
    server = make_server(tmp_path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/a/"
    try:
        req = urllib.request.Request(base + "v.mp4", method="OPTIONS")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Access-Control-Allow-Headers"] == "Range"
            assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
        req = urllib.request.Request(base + "missing.mp4", headers={"Range": "bytes=0-9"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


# ava.x_read_ava_csv__mutmut_35 / _36: normalized coordinates are accepted in [-1, 2]
def test_ava_coordinates_bounds(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    r = p.requests[0]
    f, lab = r.frames[0], ds.classes[0]
    ok = ta._write_ava(p, run / "ok.csv", [[r.video, f, -1.0, 0.1, 2.0, 0.2, lab, "7"]])
    got = read_ava_csv(ok, p)
    v = ds[r.video]
    (box,) = [b.box for b in got.boxes if b.track == "7"]
    assert box == pytest.approx((-v.width, 0.1 * v.height, 2.0 * v.width, 0.2 * v.height))
    for bad in (-1.01, 2.01):
        path = ta._write_ava(p, run / "bad.csv", [[r.video, f, bad, 0.1, 0.3, 0.2, lab, "7"]])
        with pytest.raises(AnnotationFileError, match="not normalized"):
            read_ava_csv(path, p)


# encode.x_task_fps__mutmut_3 / _11
def test_task_fps_rules(ds):
    v = ds[0]
    assert task_fps(ds, v, 12.5) == 12.5
    with pytest.raises(ValueError, match="must be positive"):
        task_fps(ds, v, 0)
    # A dataset's native rate by its name, with or without a ":preset" part.
    for name, fps in (("ucf101-24", 25.0), ("jhmdb-21:split2", 30.0), ("synthetic:tiny", None)):
        other = VideoDataset(name, ds.classes, [v])
        assert task_fps(other, v) == (fps or DEFAULT_FPS), name


# importer.x_apply_annotations__mutmut_11 / _12: the report names the format and the files
def test_import_report_names_format_and_files(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    path = ta._write_ava(p, run / "all.csv")
    rep = import_files(p, [path], "ava-csv")
    assert rep.format == "ava-csv" and [Path(f) for f in rep.files] == [path]
    saved = json.loads((p.folder / "import.json").read_text())["report"]
    assert saved["format"] == "ava-csv" and [Path(f) for f in saved["files"]] == [path]


def _ls_export(folder: Path, p):
    # fg_threshold 0: the round's model detects a box in every frame, so every task has tracks.
    tasks = json.loads((export_labelstudio(p, folder / "ls", fg_threshold=0.0)
                        / "tasks.json").read_text())
    return tasks, ta._labelstudio_export(p, tasks)


# labelstudio.x_read_labelstudio__mutmut_39 / _42 / _110 / _114, x__when__mutmut_21
def test_labelstudio_unknown_tasks_separate_labels_and_undated_annotations(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    _, export = _ls_export(run, p)
    want = read_labelstudio(_write(run, "ls.json", json.dumps(export)), p)
    assert want.boxes
    # A task of a video outside the pool, first: listed, and the other tasks still read.
    stray = json.loads(json.dumps(export[0]))
    stray["data"]["claus_video"] = "nope/v_x"
    bare = json.loads(json.dumps(export[0]))
    del bare["data"]["claus_video"]
    got = read_labelstudio(_write(run, "stray.json", json.dumps([bare, stray, *export])), p)
    assert got.unknown_videos[1:] == ["nope/v_x"] and _boxes(got) == _boxes(want)
    assert "no data.claus_video" in got.unknown_videos[0]
    # Labels as separate "labels" results with the region's id (how Label Studio may export
    # them), and an annotation without any timestamp beside the dated one.
    for task in export:
        ann = task["annotations"][1]
        for res in list(ann["result"]):
            labels = res["value"].pop("labels")
            ann["result"].append({"id": res["id"], "type": "labels", "from_name": "label",
                                  "to_name": "video", "value": {"labels": labels}})
        task["annotations"].insert(0, {"id": 9, "was_cancelled": False, "result": []})
    got = read_labelstudio(_write(run, "split.json", json.dumps(export)), p)
    assert _boxes(got) == _boxes(want)


# labelstudio.x_export_labelstudio__mutmut_146 / _150 / _159 / _181, x__video_url__mutmut_49
def test_labelstudio_prediction_json_and_url_template(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    tasks, _ = _ls_export(run, p)
    preds = [pr for t in tasks for pr in t["predictions"]]
    assert preds and all(pr["result"] for pr in preds)
    for pr in preds:
        assert isinstance(pr["score"], float) and pr["score"] == round(pr["score"], 6)
        for res in pr["result"]:
            assert res["origin"] == "prediction" and res["to_name"] == "video"
            assert isinstance(res["score"], float) and res["score"] == round(res["score"], 6)
            assert {"framesCount", "duration", "sequence", "labels"} <= set(res["value"])
    out = export_labelstudio(p, run / "ls2", predictions=False,
                             video_url="https://host/{stem}/{video}.mp4")
    urls = {t["data"]["claus_video"]: t["data"]["video"]
            for t in json.loads((out / "tasks.json").read_text())}
    for video, url in urls.items():
        assert url == f"https://host/{video.rsplit('/', 1)[-1]}/{video}.mp4"


# ap.x__detections_array__mutmut_20 / _22, ap.x_ap_from_tp__mutmut_6, ap.x__video_ious__mutmut_21
def test_ap_inputs_are_checked():
    gt = {"v": {0: [np.array([[0, 0, 0, 9, 9]], np.float64)]}}
    with pytest.raises(ValueError, match=r"column 1 \(frame\) must hold integers"):
        frame_ap(gt, ["v"], np.array([[0, 0.5, 0, 0.9, 0, 0, 9, 9]]))
    with pytest.raises(ValueError, match="num_gt must be > 0"):
        ap_from_tp(np.array([True]), 0)
    with pytest.raises(ValueError, match=r"gt\['v'\] has label 2 outside \[0, 2\)"):
        video_ap({"v": {2: gt["v"][0]}}, ["v"], {}, 2)


# ap.x_video_map_summary__mutmut_32: the mean over 0.5:0.05:0.95, not v-mAP@0.5 alone
def test_video_map_summary_averages_ten_thresholds():
    # One GT tube over frames 0-9 and one detection over the same frames whose boxes have IoU
    # 11 * 8.2 / (11 * 11) = 0.745 (ACT's inclusive +1 pixels): a hit at 0.5 ... 0.7, a miss
    # at 0.75 ... 0.95.
    gt_tube = np.array([[f, 0, 0, 10, 10] for f in range(10)], np.float64)
    det = np.array([[f, 0, 0, 10, 7.2] for f in range(10)], np.float64)
    res = video_map_summary({"v": {0: [gt_tube]}}, ["v"], {"v": {0: [(det, 0.9)]}}, 1)
    assert res["v-mAP@0.5"] == 100.0
    assert res["v-mAP@0.5:0.95"] == pytest.approx(50.0)


# detect.x_components__mutmut_40, x_frame_detections__mutmut_72
def test_components_of_empty_frames_and_the_score_floor():
    c = components(np.zeros((3, 8, 8), np.float32))
    assert [len(x) for x in (c.frame, c.box, c.conf, c.area)] == [0, 0, 0, 0]
    fg = np.zeros((1, 8, 8), np.float32)
    fg[0, 1:4, 1:4] = 0.8
    comps = components(fg)
    probs = np.array([[0.1, 0.6, 0.3]], np.float32)
    rows = frame_detections(comps, probs, 0, top_k=3, min_score=0.2)
    # Scores 0.8 x (0.6, 0.3, 0.1): the 0.08 detection is below the floor; x1 = 1 is no score.
    np.testing.assert_allclose(rows[:, 3], [0.48, 0.24], rtol=1e-6)
    assert rows[:, 2].tolist() == [1, 2]


# pipeline.x_temporal_smooth__mutmut_6 / _22
def test_temporal_smooth_two_frames_and_float32():
    fg = np.zeros((2, 1, 1), np.float64)
    fg[1] = 1.0
    out = temporal_smooth(fg, 1)
    # Frame 0: mean of (0 repeated, 0, 1); frame 1: mean of (0, 1, 1 repeated).
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [1 / 3, 2 / 3], rtol=1e-6)


# ---------------------------------------------------------------------------- rounds


# rounds.x_relocate_run__mutmut_6 / _23 / _25 / _40 (no test ran it)
def test_relocate_run_rewrites_config_and_fingerprint(run, tmp_path):  # noqa: F811
    # The synthetic data has no root; its frame store may move (any existing folder will do for
    # the check, which finds no annotation files to compare).
    data = read_run_config(run).data
    new = dataclasses.replace(data, store=str(tmp_path))
    assert relocate_run(run, data) == read_run_config(run)  # nothing moved
    got = relocate_run(run, new)
    assert got.data.store == str(tmp_path) and read_run_config(run).data.store == str(tmp_path)
    assert json.loads((run / "dataset.json").read_text())["spec"]["store"] == str(tmp_path)
    with pytest.raises(RunMismatchError, match="preset differ"):
        relocate_run(run, dataclasses.replace(new, preset="demo"))
    with pytest.raises(DataMovedError, match="does not exist"):
        relocate_run(run, dataclasses.replace(new, store=str(tmp_path / "gone")))
    assert read_run_config(run).data.store == str(tmp_path)


# rounds.xǁ_Roundsǁcommit__mutmut_29, select__mutmut_100, x__cluster_videos__mutmut_6
def test_round_files_record_strategy_budget_and_clusters(tmp_path, ds):
    # More clusters asked than there are pool videos: K is capped at the number of videos.
    cfg = tr.cfg("claus", clusters=10_000)
    run_rounds(tmp_path / "run", cfg, trainer=tr.FakeTrainer().trainer(), dataset=ds,
               progress=False)
    rounds = sorted((tmp_path / "run").glob("round_*"))
    assert len(rounds) == 3
    for work in rounds:
        summary = json.loads((work / "round.json").read_text())
        assert (summary["strategy"], summary["seed"]) == ("claus", 3)
        labels = LabelState.load(work / "labels.json", ds)  # d4cf34c: _summary__mutmut_14
        assert summary["labelled_videos"] == len(labels.labelled_videos()) > 0
    for work in rounds[:-1]:
        sel = json.loads((work / "selection.json").read_text())
        assert sel["budget_unit"] == "boxes" and sel["budget"] >= sel["cost"] > 0
        assert "initial" not in sel  # round 0 starts from a random labelled set
        names = [v.name for v in ds.videos if v.split == "train"]
        assert sorted(sel["all_clusters"]) == sorted(names)
        assert len(set(sel["all_clusters"].values())) <= len(names)


def _uniform_pool(n: int = 4, length: int = 40):
    return dict(names=[f"v{i}" for i in range(n)], num_frames=[length] * n,
                frame_costs=[np.ones(length, np.int64)] * n, labelled=[[] for _ in range(n)])


# strategies.x_select_round__mutmut_76 / _91
def test_equidistant_and_random_frames_per_video():
    # budget 12 over V = 4 videos of 40 one-box frames: 3 frames each, centres of 3 segments.
    pool = _uniform_pool()
    sel = select_round("equidistant", budget=12, videos_per_round=4,
                       rng=np.random.default_rng(0), **pool)
    assert sel.frames == {f"v{i}": equidistant_frames(40, set(), 3) for i in range(4)}
    assert equidistant_frames(40, set(), 3) == [6, 19, 33]  # centres 6.7, 20, 33.3 (tie: lower)
    rnd = select_round("random", budget=12, videos_per_round=4,
                       rng=np.random.default_rng(0), **pool)
    assert rnd.cost == 12 and rnd.frames != sel.frames  # random frames, not spaced ones


# strategies.x_select_round__mutmut_50: a fully labelled video is not "partly labelled"
def test_fully_labelled_videos_do_not_top_up_the_pool():
    pool = _uniform_pool(3, 10)
    pool["labelled"] = [list(range(10)), [0], []]  # v0 full, v1 partly, v2 untouched
    sel = select_round("equidistant", budget=6, videos_per_round=3,
                       rng=np.random.default_rng(0), **pool)
    # V = 2 videos, 3 frames each, spaced for 3 (with v0 counted V = 3 would space them for 2).
    assert sel.frames == {"v2": equidistant_frames(10, set(), 3),
                          "v1": equidistant_frames(10, {0}, 3)}
    assert sel.cost == 6


# strategies.x_select_round__mutmut_199: scored strategies keep each video's score
def test_scored_selection_keeps_video_scores():
    n, L = 4, 12
    pool = _uniform_pool(n, L)
    unc = torch.rand(n, L, generator=torch.Generator().manual_seed(0))
    inside = torch.ones(n, L, dtype=torch.bool)
    scores = FrameScores(uncertainty=unc, entropy=unc.clone(), informative=inside,
                         covered=inside, lengths=torch.full((n,), L))
    sel = select_round("uncertainty", budget=4, videos_per_round=2, scores=scores,
                       rng=np.random.default_rng(0), **pool)
    assert len(sel.video_scores) == 2
    assert all(isinstance(s, float) and 0 <= s <= 1 for s in sel.video_scores.values())


# strategies.x_allocate_clusters__mutmut_25: a cap without labelled counts: nothing labelled yet
def test_allocate_clusters_without_labelled_counts():
    assert allocate_clusters([3, 3], 4, cap=0.5).tolist() == allocate_clusters(
        [3, 3], 4, labelled_counts=[0, 0], cap=0.5).tolist() == [2, 2]
    assert int(allocate_clusters([5, 2, 1], 4).sum()) == 4


# pool.xǁPoolScoresǁfrom_state__mutmut_17
def test_pool_scores_state_round_trip():
    n, L = 3, 5
    lengths = torch.tensor([5, 3, 4])
    inside = torch.arange(L)[None] < lengths[:, None]
    fs = FrameScores(uncertainty=torch.rand(n, L), entropy=torch.rand(n, L), informative=inside,
                     covered=inside & (torch.arange(L)[None] > 0), lengths=lengths)
    ps = PoolScores(videos=[4, 0, 2], scores=fs, embeddings=torch.randn(n, 6), mode="mass",
                    passes=3)
    back = PoolScores.from_state(ps.to_state())
    assert (back.videos, back.mode, back.passes) == ([4, 0, 2], "mass", 3)
    assert torch.equal(back.embeddings, ps.embeddings)
    for f in ("uncertainty", "entropy", "informative", "covered", "lengths"):
        assert torch.equal(getattr(back.scores, f), getattr(fs, f)), f


# strategies.x_select_round__mutmut_1: the rounds engine relies on select_round's default radius
def test_select_round_default_suppression_radius_is_four():
    # One video: frame 0 (1.0) is picked first; frame 5 (0.99) lies just outside radius 4, so it
    # keeps its score and beats frame 15 (0.9); a radius of 5 would suppress it below 0.9.
    pool = _uniform_pool(1, 20)
    unc = torch.zeros(1, 20)
    unc[0, 0], unc[0, 5], unc[0, 15] = 1.0, 0.99, 0.9
    inside = torch.ones(1, 20, dtype=torch.bool)
    scores = FrameScores(uncertainty=unc, entropy=unc.clone(), informative=inside,
                         covered=inside, lengths=torch.tensor([20]))
    sel = select_round("uncertainty", budget=2, videos_per_round=1, scores=scores,
                       rng=np.random.default_rng(0), **pool)
    assert sel.frames == {"v0": [0, 5]}
    wide = select_round("uncertainty", budget=2, videos_per_round=1, scores=scores, radius=5,
                        rng=np.random.default_rng(0), **pool)
    assert wide.frames == {"v0": [0, 15]}


# scoring.x_stitch_clip_stats__mutmut_27 / _40 / _43
def test_stitch_clip_stats_edges():
    # Two clips of 3 frames on video 0 (5 frames) and a video 1 of length 0; one-pixel frames.
    fg = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    st = stitch_clip_stats(fg, fg * 10, fg * 100, [0, 0], [0, 2], [5, 0], pixels=1)
    assert st.pixels == 1 and st.coverage.tolist() == [[1, 1, 2, 1, 1], [0] * 5]
    np.testing.assert_allclose(st.fg_count[0].tolist(), [1, 2, 3.5, 5, 6])
    with pytest.raises(ValueError, match="pixels must be >= 1"):
        stitch_clip_stats(fg, fg, fg, [0, 0], [0, 2], [5, 0], pixels=0)
    with pytest.raises(ValueError, match="clip_start"):
        stitch_clip_stats(fg, fg, fg, [0, 0], [0, 2, 4], [5, 0], pixels=1)


# rounds.x_verify_round__mutmut_1 / _4: a committed round's files are checked on resume
def test_verify_round_names_a_changed_or_missing_file(tmp_path, ds):
    run_rounds(tmp_path / "r", tr.cfg("random", target_percent=10),
               trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False)
    r0 = tmp_path / "r" / "round_000"
    verify_round(r0)
    sel = r0 / "selection.json"
    sel.write_text(sel.read_text() + " ")
    with pytest.raises(DamagedRunError, match=r"selection\.json: changed since round round_000"):
        verify_round(r0)
    sel.unlink()
    with pytest.raises(DamagedRunError, match=r"selection\.json: missing from committed round"):
        verify_round(r0)


# rounds.x_run_experiment__mutmut_20: include_full adds the fully supervised reference run
def test_run_experiment_includes_the_full_run(tmp_path, ds):
    run_experiment(tmp_path, tr.cfg(target_percent=10), ["random"], [3], include_full=True,
                   trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["full", "random"]


# pending.x_safe_relpath__mutmut_11: a video name may not climb out of the export folder
def test_safe_relpath_refuses_escapes():
    assert safe_relpath("Class/v_1") == PurePosixPath("Class/v_1")
    for bad in ("../x", "a/../../x", "/abs/x", "a\\b", ""):
        with pytest.raises(ValueError, match="cannot be used as a relative path"):
            safe_relpath(bad)


# serve: RangeHandler.end_headers__mutmut_16, send_head__mutmut_57 / _68
def test_serve_exposed_headers_long_suffix_and_unsatisfiable_range(tmp_path):
    (tmp_path / "a").mkdir()
    data = bytes(range(256)) * 4
    (tmp_path / "a" / "v.mp4").write_bytes(data)
    server = make_server(tmp_path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/a/v.mp4"
    try:
        req = urllib.request.Request(url, headers={"Range": "bytes=-5000"})  # longer than it
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 206 and r.read() == data
            assert r.headers["Content-Range"] == f"bytes 0-{len(data) - 1}/{len(data)}"
            assert r.headers["Access-Control-Expose-Headers"] == (
                "Accept-Ranges, Content-Length, Content-Range")
        req = urllib.request.Request(url, headers={"Range": f"bytes={len(data) + 5}-"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 416 and e.value.headers["Content-Range"] == f"bytes */{len(data)}"
    finally:
        server.shutdown()
        server.server_close()


# cvat.x_read_cvat_images__mutmut_69: an image of an unknown video does not end the file
def test_cvat_images_after_an_unknown_video_are_read(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    r = p.requests[0]
    v = ds[r.video]
    f = r.frames[0]
    box = f'<box label="{ds.classes[0]}" xtl="1" ytl="2" xbr="5" ybr="6" occluded="0"/>'
    text = (f'<annotations><image id="0" name="nope/v_9/000001.jpg" width="4" height="4"/>'
            f'<image id="1" name="{r.video}/{f:06d}.jpg" width="{v.width}" '
            f'height="{v.height}">{box}</image></annotations>')
    got = read_cvat_images(_write(run, "unknown_first.xml", text), p)
    assert got.unknown_videos == ["nope/v_9"]
    assert [(b.video, b.frame, b.box) for b in got.boxes] == [(r.video, f, (1.0, 2.0, 5.0, 6.0))]


# rounds.x__committed__mutmut_3 (round 100 and later), x_config_diff__mutmut_9,
# x__manifest__mutmut_1, xǁ_Roundsǁcommit__mutmut_43 (a frame budget is said in round.json)
def test_round_numbers_config_diff_manifest_and_frame_budgets(tmp_path, ds):
    for r in (0, 7, 123):
        (tmp_path / f"round_{r:03d}").mkdir()
        (tmp_path / f"round_{r:03d}" / "round.json").write_text("{}")
    (tmp_path / "round_008").mkdir()  # not committed: no round.json
    assert RunFolder(tmp_path).committed() == [0, 7, 123]
    # A field that is a dict on one side only (an older config without "train") is compared
    # key by key, as data.* and train.* are.
    assert config_diff({"train": {"epochs": 3}, "seed": 1}, {"train": None, "seed": 2}) == [
        "seed: 1 → 2", "train.epochs: 3 → None"]
    run_rounds(tmp_path / "r", tr.cfg("random", target_percent=10, budget_unit="frames"),
               trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False)
    r0 = tmp_path / "r" / "round_000"
    assert json.loads((r0 / "manifest.json").read_text())["format"] == "claus.manifest"
    summary = json.loads((r0 / "round.json").read_text())
    assert summary["budget_unit"] == "frames"
    assert summary["total_frames"] == ds.num_frames("train")


# labelstudio.x_read_labelstudio__mutmut_299, tracks.x_track_boxes__mutmut_22 (rotated boxes
# are counted, each keyframe once), labelstudio.x__task_size__mutmut_7 (a bad claus_size)
def test_labelstudio_counts_rotated_keyframes_and_ignores_a_bad_size(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    _, export = _ls_export(run, p)
    want = read_labelstudio(_write(run, "plain.json", json.dumps(export)), p)
    task = next(t for t in export
                if any(len(r["value"]["sequence"]) >= 2 for r in t["annotations"][1]["result"]))
    region = next(r for r in task["annotations"][1]["result"]
                  if len(r["value"]["sequence"]) >= 2)
    for item in region["value"]["sequence"][:2]:
        item["rotation"] = 30
    got = read_labelstudio(_write(run, "rotated.json", json.dumps(export)), p)
    assert got.rotated == 2
    for item in region["value"]["sequence"][:2]:
        item["rotation"] = 0
    for t in export:
        t["data"]["claus_size"] = [0, 0]  # not a size: the video's own is used
    got = read_labelstudio(_write(run, "size.json", json.dumps(export)), p)
    assert _boxes(got) == _boxes(want) and got.rotated == 0


# pending.x_frame_source__mutmut_4 / _8 / _10 / _16 / _18: the requests' frame-source fields
def test_frame_source_fields():
    frames = ImageFolderFrames("/data/Class/v_1/{:05d}.jpg", first=1, num_frames=3)
    video = VideoFileFrames("/data/Class/v_1.avi", num_frames=3)

    def with_source(s):
        return Video("Class/v_1", 0, 3, 24, 32, "train", [], source=s)

    assert frame_source(with_source(frames)) == {
        "source": "/data/Class/v_1", "source_kind": "frames",
        "frame_pattern": "/data/Class/v_1/{:05d}.jpg", "first_frame": 1}
    assert frame_source(with_source(video)) == {"source": "/data/Class/v_1.avi",
                                                "source_kind": "video"}


# labelstudio.x_export_labelstudio__mutmut_138 / _141, predictions.x_predict_requests__mutmut_127
def test_labelstudio_prediction_times_and_order(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    tasks, _ = _ls_export(run, p)
    for t in tasks:
        fps = t["data"]["fps"]
        (pred,) = t["predictions"]
        scores = [res["score"] for res in pred["result"]]
        assert scores == sorted(scores, reverse=True)  # best track first
        for res in pred["result"]:
            for item in res["value"]["sequence"]:
                assert item["time"] == round(item["frame"] / fps, 6)


# labelstudio.x_export_labelstudio__mutmut_114 (a video without detections),
# x__video_url__mutmut_42 ({path} is empty for a video that is no file)
def test_labelstudio_tasks_without_detections_and_an_empty_path(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    out = export_labelstudio(p, run / "none", fg_threshold=0.9999, video_url="v/{path}{stem}")
    tasks = json.loads((out / "tasks.json").read_text())
    assert tasks
    for t in tasks:
        assert t["predictions"] == [{"model_version": t["predictions"][0]["model_version"],
                                     "score": 0.0, "result": []}]
        assert t["data"]["video"] == "v/" + t["data"]["claus_video"].rsplit("/", 1)[-1]


# rounds.xǁ_Roundsǁscore__mutmut_45: entropy scores the pool in one deterministic pass
def test_entropy_rounds_score_deterministically(tmp_path, ds):
    run_rounds(tmp_path / "r", tr.cfg("entropy", target_percent=10),
               trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False)
    state = torch.load(tmp_path / "r" / "round_000" / "scores.pt", weights_only=True)
    assert state["mode"] == "deterministic"


# rounds.x__dataset__mutmut_3: a dataset= opened from other data than the config names
def test_run_rounds_refuses_a_dataset_of_other_data(tmp_path, ds):
    other = copy.copy(ds)
    other.spec = DatasetSpec(name="synthetic", preset="demo")
    with pytest.raises(ValueError, match="dataset= was opened as"):
        run_rounds(tmp_path / "r", tr.cfg("random"), trainer=tr.FakeTrainer().trainer(),
                   dataset=other, progress=False)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# rounds.x__adopt_round0__mutmut_38 (train/ copied again over the one in place), and
# shutil.rmtree(None, ...) for the stale train.adopting (by hand: not in the sample)
def test_adopting_round0_resumes_after_a_kill(tmp_path, ds):
    donor = tmp_path / "donor"
    run_rounds(donor, tr.cfg("random", target_percent=5), trainer=tr.FakeTrainer().trainer(),
               dataset=ds, progress=False)
    src = donor / "round_000"
    train = tr.cfg("entropy").training()
    # Killed while copying train/: a partial copy under the temporary name.
    work = tmp_path / "w"
    (work / "train.adopting").mkdir(parents=True)
    (work / "train.adopting" / "ckpt.pt").write_bytes(b"cut")
    (work / "train.adopting" / "stray.txt").write_text("from the killed copy")
    initial_labels(ds, tr.cfg()).save(work / "labels.json")
    assert _adopt_round0(donor, work, train) == str(donor)
    assert _tree(work / "train") == _tree(src / "train") and _tree(src / "train")
    for name in ("model.pt", "eval.json"):
        assert (work / name).read_bytes() == (src / name).read_bytes(), name
    assert not list(work.glob("*.adopting"))
    # Killed after train/ was in place, while copying eval.json: train/ is kept as it is.
    (work / "model.pt").unlink()
    (work / "eval.json").rename(work / "eval.json.adopting")
    before = _tree(work / "train")
    assert _adopt_round0(donor, work, train) == str(donor)
    assert _tree(work / "train") == before
    assert (work / "model.pt").read_bytes() == (src / "model.pt").read_bytes()
    assert not list(work.glob("*.adopting"))
    # d4cf34c: _adopt_round0__mutmut_6. A round with a model of its own keeps it, and a donor
    # without a complete round 0 gives nothing.
    (work / "model.pt").write_bytes(b"own")
    assert _adopt_round0(donor, work, train) is None
    assert (work / "model.pt").read_bytes() == b"own"
    (work / "model.pt").unlink()
    (src / "eval.json").rename(src / "eval.json.gone")
    assert _adopt_round0(donor, work, train) is None and not (work / "model.pt").exists()


# rounds.x_run_experiment__mutmut_69: a one-round run (round 0 is its last) is a donor too
def test_run_experiment_shares_round0_of_one_round_runs(tmp_path, ds):
    fake = tr.FakeTrainer()
    run_experiment(tmp_path, tr.cfg(target_percent=5), ["random", "uncertainty"], [3],
                   include_full=False, trainer=fake.trainer(), dataset=ds, progress=False)
    assert fake.fits == 1
    r0 = [tmp_path / s / "seed3" / "round_000" for s in ("random", "uncertainty")]
    assert json.loads((r0[1] / "round.json").read_text())["round0_from"] == str(
        tmp_path / "random" / "seed3")
    assert (r0[0] / "model.pt").read_bytes() == (r0[1] / "model.pt").read_bytes()


# rounds.xǁ_Roundsǁscore__mutmut_14: pool scoring uses the trainer's clip geometry, size too
def test_pool_scoring_uses_the_trainers_frame_size(tmp_path, ds, monkeypatch):
    geometry = {"T": 4, "stride": 3, "size": 16, "device": "cpu"}
    sized = dataclasses.replace(tr.FakeTrainer().trainer(), geometry=lambda o: dict(geometry))
    calls, real = [], rounds.score_pool

    def scoring(*a, **kw):
        g = kw["geometry"]
        calls.append({"T": g.T, "stride": g.stride, "size": g.size, "device": kw["device"]})
        seeds.append(kw["seed"])
        return real(*a, **kw)

    seeds = []
    monkeypatch.setattr(rounds, "score_pool", scoring)
    run_rounds(tmp_path / "r", tr.cfg("uncertainty", target_percent=10), trainer=sized, dataset=ds,
               progress=False)
    assert len(calls) >= 1 and all(c == geometry for c in calls)
    # x_score__mutmut_25 (d4cf34c): the MC passes draw from the run's scoring stream, (seed,
    # round, 2): another stream would change every published run's selections.
    assert seeds == [int(np.random.SeedSequence([3, 0, 2]).generate_state(1)[0])]
    scores = torch.load(tmp_path / "r" / "round_000" / "scores.pt", weights_only=True)
    assert scores["informative"].shape[0] == len(ds.split_indices("train"))


# rounds.x__join_ranks__mutmut_7: under torchrun (WORLD_SIZE > 1) the rounds join the group
def test_rounds_join_the_process_group_under_torchrun(run, ds, monkeypatch):  # noqa: F811
    joined = []
    monkeypatch.setattr("claus.training.init_distributed", lambda: joined.append(1) or True)
    cfg = read_run_config(run)
    for world, n in ((None, 0), ("1", 0), ("2", 2)):
        if world is None:
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("WORLD_SIZE", world)
        joined.clear()
        assert relocate_run(run, cfg.data) == cfg
        with pytest.raises(AwaitingLabels):
            run_rounds(run, cfg, trainer=ta.FakeTrainer().trainer(), dataset=ds, progress=False)
        assert len(joined) == n, world


# ------------------------------------------------------------------- annotation, at 4fa9351


# cvat.x_read_cvat_video__mutmut_21: the video named by the caller, whatever the task's name
def test_cvat_video_for_a_named_video(run, ds):  # noqa: F811
    p, r, xml, want = _video_case(run, ds)
    renamed = xml.replace(f"<name>{r.video}</name>", "<name>task 3</name>")
    path = _write(run, "renamed.xml", renamed)
    assert read_cvat_video(path, p).unknown_videos == ["task 3"]
    got = read_cvat_video(path, p, video=r.video)
    assert not got.unknown_videos and _boxes(got) == _boxes(want)


# jsonl.x_request_lines__mutmut_8 / _40: the keys of requests.jsonl (its documented format)
def test_request_lines_keys(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    lines = request_lines(p)
    assert [x["video"] for x in lines] == [r.video for r in p.requests]
    for x, r in zip(lines, p.requests, strict=True):
        assert set(x) >= {"format", "version", "run", "round", "dataset", "strategy", "video",
                          "source", "fps", "num_frames", "width", "height", "frames", "scores",
                          "video_score", "cluster"}
        assert (x["version"], x["round"], x["frames"], x["cluster"]) == (
            1, p.round, list(r.frames), r.cluster)


# labelstudio.x__when__mutmut_17 (an unreadable updated_at falls back to created_at),
# x__who__mutmut_15 (--annotator by a completed_by object's id)
def test_labelstudio_annotation_dates_and_annotator_ids(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    _, export = _ls_export(run, p)
    task = next(t for t in export if t["annotations"][1]["result"])
    video = task["data"]["claus_video"]
    boxes = task["annotations"][1]["result"]
    # Two submitted annotations: 10:05 with the boxes, and an empty one whose updated_at does
    # not parse, created at 10:10: the later one (by created_at) is used.
    task["annotations"] = [
        {"id": 1, "was_cancelled": False, "result": boxes, "updated_at": "2024-05-01T10:05:00Z",
         "completed_by": {"id": 7}},
        {"id": 2, "was_cancelled": False, "result": [], "updated_at": "yesterday",
         "created_at": "2024-05-01T10:10:00Z", "completed_by": {"id": 8, "email": "b@x.org"}}]
    path = _write(run, "dates.json", json.dumps(export))
    got = read_labelstudio(path, p)
    assert video in got.covered and not [b for b in got.boxes if b.video == video]
    # The annotator by id (an object without an email): annotation 1, with its boxes.
    got = read_labelstudio(path, p, annotator="7")
    assert [b for b in got.boxes if b.video == video]
    got = read_labelstudio(path, p, annotator="B@X.ORG")
    assert video in got.covered and not [b for b in got.boxes if b.video == video]


# importer.x__label_video__mutmut_81 / _82 (a box of another class than its video's, class 0
# included), x_ǁ_FrameIndexǁ_duplicates__mutmut_52 (untracked duplicates are per video)
def test_import_class_mismatch_and_duplicates_per_video(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    frames = {r.video: set(r.frames) for r in p.requests}
    a, b = next((a, b) for a in frames for b in frames if a < b and frames[a] & frames[b])
    f = min(frames[a] & frames[b])
    zero = next(r for r in p.requests if ds[r.video].label == 0)
    other = ds.classes[1]
    same = [f, 0.1, 0.1, 0.3, 0.3, ds.classes[0], ""]  # untracked: no track id
    rows = [[a, *same], [b, *same], [a, *same],  # the second box of `a` repeats the first
            [zero.video, zero.frames[0], 0.5, 0.5, 0.7, 0.7, other, ""]]
    rep = import_files(p, [ta._write_ava(p, run / "extra.csv", rows)], "ava-csv",
                       dry_run=True)
    assert rep.boxes == len(ta.gt(p)) + 3  # a and b keep their box; the repeat is dropped
    (note,) = [n for n in rep.notes if "identical duplicate" in n]
    assert note.startswith(f"{run / 'extra.csv'}: 1 identical duplicate")
    assert rep.class_mismatch == {zero.video: [other]}


# importer.x__label_video__mutmut_7: new tubes are numbered after those the video has
def test_imported_tubes_follow_the_videos_human_tubes(run, ds):  # noqa: F811
    from claus.annotation import HUMAN_TUBE_BASE
    from claus.data import LabelState

    p = open_pending(run, ds)
    r = next(r for r in p.requests if ta.gt(p) and any(g[0] == r.video for g in ta.gt(p)))
    free = next(f for f in range(ds[r.video].num_frames)
                if f not in r.frames and not p.labels.is_labelled(r.video, f))
    labels = LabelState.load(p.folder / "labels.json", ds)
    labels.label(r.video, free, [(HUMAN_TUBE_BASE + 5, 0, (1.0, 1.0, 4.0, 4.0))], 0)
    labels.save(p.folder / "labels.json")
    p = open_pending(run, ds)
    import_files(p, [ta._write_ava(p, run / "all.csv")], "ava-csv")
    got = ta.imported(p)
    new = {b.tube for f in r.frames for b in got.entries(r.video).get(f, [])}
    assert new and min(new) > HUMAN_TUBE_BASE + 5
    assert [b.tube for b in got.entries(r.video)[free]] == [HUMAN_TUBE_BASE + 5]


# cvat.x_export_cvat__mutmut_85 / _125 (the README names the round, and the run in the
# --allow-missing command), x_without_videos__mutmut_9 (the rest of the selection is kept)
def test_cvat_export_without_an_unreadable_video(run, ds, monkeypatch):  # noqa: F811
    from claus.annotation import export_cvat
    from claus.annotation.cvat import without_videos
    from claus.data import FrameReadError

    p = open_pending(run, ds)
    lost = p.requests[0].video
    read = ds.read_frames

    def reading(video, frames):
        if video == lost:
            raise FrameReadError("frame 3 is truncated", path=f"/data/{lost}/00004.jpg")
        return read(video, frames)

    monkeypatch.setattr(ds, "read_frames", reading)
    monkeypatch.setattr(p.cfg.train, "max_bad_share", 1.0)
    with pytest.warns(UserWarning, match="frame 3 is truncated"):
        out = export_cvat(p, run / "task")
    readme = (out / "README.md").read_text()
    assert f"round {p.round} of {p.run}" in readme
    left_out = readme[readme.index("## Left out"):]  # its own import command, for this run
    assert f"`{lost}`: frame 3 is truncated" in left_out
    assert f"python -m claus.annotate --run {p.run} --file annotations.xml" in left_out
    kept = without_videos(p, [lost]).selection
    sel = p.selection
    assert kept == Selection(
        frames={k: v for k, v in sel.frames.items() if k != lost},
        scores={k: v for k, v in sel.scores.items() if k != lost},
        video_scores={k: v for k, v in sel.video_scores.items() if k != lost},
        clusters={k: v for k, v in sel.clusters.items() if k != lost}, cost=sel.cost)
    assert kept.cost > 0 and without_videos(p, []) is p


# importer.xǁBoxTableǁof__mutmut_49: an absurd frame number is out of range, not an overflow
def test_import_absurd_frame_numbers_are_out_of_range(run, ds):  # noqa: F811
    from claus.annotation import Annotations, ImportedBox, apply_annotations

    p = open_pending(run, ds)
    r = p.requests[0]
    for frame in (-10**20, 10**20):
        ann = Annotations("far.json")
        ann.boxes.append(ImportedBox(r.video, frame, ds.classes[0], (1.0, 1.0, 3.0, 3.0), None,
                                     "far.json: box 1"))
        with pytest.raises(AnnotationFileError, match=r"frames out of range.*far\.json: box 1"):
            apply_annotations(p, [ann], allow_missing=True)


# labelstudio.x__task_size__mutmut_14 (any positive claus_size is the percentages' frame),
# x_read_labelstudio__mutmut_5 (the annotations name their file)
def test_labelstudio_percentages_of_any_task_size(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    _, export = _ls_export(run, p)
    got = {}
    for side in (2, 1):
        for t in export:
            t["data"]["claus_size"] = [side, side]
        path = _write(run, f"size{side}.json", json.dumps(export))
        ann = read_labelstudio(path, p)
        assert ann.source == str(path) and ann.boxes
        got[side] = sorted(ann.boxes, key=lambda b: (b.video, b.frame, b.track))
    # Percentages of a 1 × 1 frame are half those of a 2 × 2 one.
    assert len(got[1]) == len(got[2])
    for one, two in zip(got[1], got[2], strict=True):
        assert (one.video, one.frame, one.label, one.track) == (
            two.video, two.frame, two.label, two.track)
        assert one.box == pytest.approx(tuple(x / 2 for x in two.box), abs=1e-6)


# labelstudio.x__video_url__mutmut_19: a video file's path is the {path} of a task's URL
def test_labelstudio_url_of_a_video_file_source():
    from claus.annotation.labelstudio import _video_url

    video = Video("Class/v_1", 0, 3, 24, 32, "train", [],
                  source=VideoFileFrames("/data/Class/v_1.avi", num_frames=3))
    frames = Video("Class/v_1", 0, 3, 24, 32, "train", [],
                   source=ImageFolderFrames("/data/Class/v_1/{:05d}.jpg", first=1, num_frames=3))
    src = frame_source(video)
    assert _video_url(None, "Class/v_1", src, None, None, "") == "/data/Class/v_1.avi"
    assert _video_url("http://h/{path}", "Class/v_1", src, None, None, "") == (
        "http://h//data/Class/v_1.avi")
    # Frame folders are no video: the default URL names an MP4, {path} is empty.
    assert _video_url(None, "Class/v_1", frame_source(frames), None, None, "") == (
        "Class/v_1.mp4")
    assert _video_url("v/{path}{stem}", "Class/v_1", frame_source(frames), None, None, "") == (
        "v/v_1")


# rounds.x_default_trainer__mutmut_1 / _21 (d4cf34c): claus.training.fit as a round calls it:
# resumable, without periodic evaluation (the round evaluates once, after training)
def test_default_trainer_calls_fit(monkeypatch):
    calls = []
    monkeypatch.setattr("claus.training.fit", lambda *a, **kw: calls.append((a, kw)) or "m")
    fit = default_trainer().fit
    assert fit("cfg", "ds", "labels", "dir") == "m"
    assert fit("cfg", "ds", "labels", "dir", model="init", centers="c", progress=False) == "m"
    assert not any(kw.pop("evaluate_every", True) for _, kw in calls)  # off (False or None)
    assert calls == [(("cfg", "ds", "labels", "dir"), dict(
        model=m, centers=c, resume=True, progress=pr))
        for m, c, pr in ((None, None, True), ("init", "c", False))]


# rounds.x_is_rounds_run__mutmut_9 (d4cf34c): an unreadable config.json is no run's
def test_is_rounds_run(tmp_path, run):  # noqa: F811
    assert is_rounds_run(run)
    assert not is_rounds_run(tmp_path / "none")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    assert not is_rounds_run(tmp_path / "bad")
    (tmp_path / "bad" / "config.json").write_text('{"format": "claus.other"}')
    assert not is_rounds_run(tmp_path / "bad")


# rounds.x_cluster__mutmut_16 (d4cf34c): the video clusters are seeded by the run's seed (a
# seed / 1000 would truncate to the round number: every run would cluster alike)
def test_video_clusters_are_seeded_by_the_run(tmp_path, ds, monkeypatch):
    seeds, real = [], rounds._cluster_videos

    def clustering(emb, k, seed):
        seeds.append(int(seed))  # KMeans takes int(seed)
        return real(emb, k, seed)

    monkeypatch.setattr(rounds, "_cluster_videos", clustering)
    for seed in (3, 4):  # stopped once round 0 has clustered
        with pytest.raises(KeyboardInterrupt):
            run_rounds(tmp_path / f"s{seed}", tr.cfg("claus", seed=seed, target_percent=10),
                       trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False,
                       stop_after="round0:cluster")
    assert len(seeds) == 2 and seeds[0] != seeds[1]


# rounds.x_evaluate__mutmut_25 / _45 (d4cf34c): videos the evaluation left out (unreadable)
# are recorded in round.json, not among the metrics
def test_videos_left_out_of_evaluation_go_to_round_json(tmp_path, ds):
    name = ds[ds.split_indices("test")[0]].name
    left = {name: {"file": f"/data/{name}/00003.jpg", "reason": "truncated"}}
    trainer = dataclasses.replace(
        tr.FakeTrainer().trainer(),
        evaluate=lambda m, d, o, progress=True: {"f-mAP@0.5": 0.5, "skipped": left})
    run_rounds(tmp_path / "r", tr.cfg("random", target_percent=5, train={"max_bad_share": 0.5}),
               trainer=trainer, dataset=ds, progress=False)
    summary = json.loads((tmp_path / "r" / "round_000" / "round.json").read_text())
    assert summary["skipped"] == {"eval": left}
    assert summary["metrics"] == {"f-mAP@0.5": 0.5}
    # xǁRunContextǁ__post_init____mutmut_26: past the run's max_bad_share the run stops.
    with pytest.raises(TooManyBadVideos, match=name):
        run_rounds(tmp_path / "strict", tr.cfg("random", target_percent=5,
                                               train={"max_bad_share": 0.0}),
                   trainer=trainer, dataset=ds, progress=False)


# rounds.x_open_round__mutmut_6 / _7 (d4cf34c): resuming a run that waits for labels does
# nothing until they are imported: no training, no file written
def test_resuming_a_run_awaiting_labels_does_nothing(run, ds):  # noqa: F811
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    fake = ta.FakeTrainer()
    with pytest.raises(AwaitingLabels):
        run_rounds(run, read_run_config(run), trainer=fake.trainer(), dataset=ds,
                   progress=False)
    assert fake.fits == 0
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before
    # Not even read: the round's model and pool scores may be unreadable meanwhile.
    for name in ("model.pt", "scores.pt", "eval.json"):
        (run / "round_000.partial" / name).write_bytes(b"damaged")
    with pytest.raises(AwaitingLabels):
        run_rounds(run, read_run_config(run), trainer=fake.trainer(), dataset=ds,
                   progress=False)
