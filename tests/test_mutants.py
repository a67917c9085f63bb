"""Tests written for mutants that survived `bench/mutation.sh` (see bench/MUTATION.md).

Each test names the behaviour it pins; the comment above it names the mutants (mutmut's names)
it was written against. Fast tests only: they run in CI and in the mutation groups.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from claus.annotation import (
    AnnotationFileError,
    export_labelstudio,
    open_pending,
    read_cvat_images,
    read_cvat_video,
    read_labelstudio,
)
from claus.annotation.cvat import cvat_labels
from claus.selection.strategies import Selection, default_videos_per_round, equidistant_frames

import tests.test_annotation as ta
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


# cvat.x_read_cvat_images__mutmut_122 / _123 (the shapes counted), _71 (the unknown name)
def test_cvat_images_count_non_box_shapes_and_name_unknown_videos(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    r = p.requests[0]
    v = ds[r.video]
    f = r.frames[0]
    shapes = ('<polygon label="a" points="0,0;1,1;0,1"/><mask label="a" rle="1" left="0" '
              'top="0" width="1" height="1"/><ellipse label="a" cx="1" cy="1" rx="1" ry="1"/>'
              '<tag label="a"/>')
    text = (f'<annotations><image id="0" name="{r.video}/{f:06d}.jpg" width="{v.width}" '
            f'height="{v.height}">{shapes}</image></annotations>')
    got = read_cvat_images(_write(run, "shapes.xml", text), p)
    assert got.notes == [f"{run / 'shapes.xml'}: 3 non-box shapes ignored"]
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
