"""People in the loop: an interactive run stops after selecting; its requests are exported
(JSONL, CVAT image task, Label Studio tasks), annotation-tool files are imported back (CVAT for
video / images 1.1 XML, Label Studio JSON, AVA-style CSV) and the rounds go on.

The tool files are written here from the exported requests in each tool's documented format,
with the ground truth as the "intended" boxes, so a correct round trip gives exactly what the
simulated oracle would have revealed (tube ids aside). A stand-in trainer keeps the rounds fast;
the CLI test trains the real tiny model for one epoch.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from claus.annotate import main as annotate_main
from claus.annotation import (
    HUMAN_TUBE_BASE,
    AnnotationFileError,
    PendingError,
    export_cvat,
    export_jsonl,
    export_labelstudio,
    import_files,
    open_pending,
)
from claus.annotation.cvat import image_name
from claus.data import LabelState
from claus.models import build_model
from claus.rounds import AwaitingLabels, RunConfig, Trainer, run_rounds, simulated_oracle
from claus.select import main as select_main
from claus.train import main as train_main


class FakeTrainer:
    """Builds the tiny detector from a seed that depends on the labels; counts fits."""

    def __init__(self):
        self.fits = 0

    def trainer(self) -> Trainer:
        def fit(opts, ds, labels, run_dir, model=None, centers=None, progress=True):
            self.fits += 1
            torch.manual_seed(1000 + labels.spent())
            return build_model("tiny", ds.num_classes)

        return Trainer(fit=fit, evaluate=lambda m, d, o, progress=True: {"f-mAP@0.5": 0.5},
                       geometry=lambda o: {"T": 8, "stride": 2, "size": None, "device": "cpu"})


def cfg(**kw) -> RunConfig:
    base = dict(data="synthetic:tiny", strategy="random", seed=3, init_percent=5,
                step_percent=5, target_percent=15, passes=2, score_batch=32,
                videos_per_round=3, oracle="human")
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture(scope="module")
def waiting(tmp_path_factory, ds):
    """A run stopped after round 0's selection (copied per test)."""
    run = tmp_path_factory.mktemp("waiting") / "run"
    with pytest.raises(AwaitingLabels):
        run_rounds(run, cfg(), trainer=FakeTrainer().trainer(), dataset=ds, progress=False)
    return run


@pytest.fixture
def run(tmp_path, waiting) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(waiting, dst)
    return dst


def canon(state: LabelState) -> dict:
    """{video: {frame: (round, sorted (label, box to 0.01 px))}}, tube ids left out."""
    return {v: {f: (int(state.rounds(v)[f]), sorted(
        (b.label, tuple(round(float(x), 2) for x in b.box)) for b in bs))
        for f, bs in state.entries(v).items()} for v in state.videos}


def expected(pending) -> LabelState:
    """What the simulated oracle would reveal: the intended boxes of every round trip."""
    return simulated_oracle(pending.dataset, pending.labels, pending.selection,
                            pending.label_round)


def imported(pending) -> LabelState:
    return LabelState.load(pending.folder / "next_labels.json", pending.dataset)


def gt(pending):
    """[(video, frame, tube, label, box)] of the requested frames."""
    ds = pending.dataset
    return [(r.video, f, k, lab, [float(x) for x in b]) for r in pending.requests
            for f in r.frames for k, lab, b in ds[r.video].boxes_at(f)]


def assert_tracks_linked(pending, state: LabelState) -> None:
    """Boxes of one ground-truth tube became one imported tube (>= HUMAN_TUBE_BASE)."""
    new = {(v, f) for v, fr in pending.requested().items() for f in fr}
    for v in state.videos:
        pairs = set()
        for f, bs in state.entries(v).items():
            if (v, f) not in new:
                continue
            for b in bs:
                assert b.tube >= HUMAN_TUBE_BASE
                k = [k for k, lab, g in pending.dataset[v].boxes_at(f)
                     if np.allclose(g, b.box, atol=0.01)]
                pairs.add((k[0], b.tube))
        assert len({k for k, _ in pairs}) == len(pairs) == len({t for _, t in pairs})


# ---------------------------------------------------------------------------- rounds
def test_interactive_run_waits_resumes_and_continues(tmp_path, ds):
    fake = FakeTrainer()
    run = tmp_path / "run"
    with pytest.raises(AwaitingLabels, match=r"round 0 of .* waits for human labels.*"
                       r"claus\.select.*claus\.annotate.*claus\.train --resume"):
        run_rounds(run, cfg(), trainer=fake.trainer(), dataset=ds, progress=False)
    work = run / "round_000.partial"
    assert (work / "selection.json").is_file() and not (work / "next_labels.json").exists()
    assert fake.fits == 1
    # Not imported yet: stops again before any work.
    with pytest.raises(AwaitingLabels):
        run_rounds(run, cfg(), trainer=fake.trainer(), dataset=ds, progress=False)
    assert fake.fits == 1 and not (run / "round_000").exists()
    for r in (0, 1):
        p = open_pending(run, ds)
        assert p.round == r
        _write_ava(p, tmp_path / f"r{r}.csv")
        import_files(p, [tmp_path / f"r{r}.csv"], "ava-csv")
        want = imported(p)
        try:
            lines = run_rounds(run, cfg(), trainer=fake.trainer(), dataset=ds, progress=False)
        except AwaitingLabels as wait:
            assert r == 0 and wait.round == 1
        # The imported labels are what the next round trains on.
        assert LabelState.load(run / f"round_{r:03d}" / "next_labels.json", ds) == want
        assert LabelState.load(run / f"round_{r + 1:03d}" / ("labels.json"), ds) == want \
            if r == 1 else LabelState.load(run / "round_001.partial" / "labels.json", ds) == want
    assert [x["round"] for x in lines] == [0, 1, 2] and fake.fits == 3  # no refits
    with pytest.raises(PendingError, match="no round .* waits for labels"):
        open_pending(run, ds)


def test_pending_refuses_simulated_runs(tmp_path, ds):
    run = tmp_path / "run"
    run_rounds(run, cfg(oracle="simulated", target_percent=5), trainer=FakeTrainer().trainer(),
               dataset=ds, progress=False)
    with pytest.raises(PendingError, match="--oracle simulated"):
        open_pending(run, ds)
    with pytest.raises(PendingError, match="not an active-learning run folder"):
        open_pending(tmp_path / "nothing", ds)


# ---------------------------------------------------------------------------- JSONL
def test_jsonl_export_lists_requests(run, ds):
    p = open_pending(run, ds)
    path = export_jsonl(p, run / "out")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["video"] for x in lines] == list(p.selection.frames)
    for x in lines:
        v = ds[x["video"]]
        assert x["frames"] == sorted(p.selection.frames[x["video"]])
        assert len(x["scores"]) == len(x["frames"]) and x["round"] == 0
        assert x["num_frames"] == v.num_frames and x["strategy"] == "random"
        assert x["source_kind"] == "array" and Path(x["source"]).is_file()
        assert x["fps"] is None and (x["width"], x["height"]) == (v.width, v.height)


# ---------------------------------------------------------------------------- CVAT
def _cvat_images_xml(p, images_dir: Path) -> str:
    """A "CVAT for images 1.1" export of the task made from the exported images."""
    boxes = {}
    for v, f, k, lab, b in gt(p):
        boxes.setdefault((v, f), []).append((k, p.dataset.classes[lab], b))
    out = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>",
           "  <meta><task><id>7</id><name>claus</name><mode>annotation</mode></task></meta>"]
    names = sorted(str(q.relative_to(images_dir)) for q in images_dir.rglob("*.jpg"))
    for i, name in enumerate(names):
        v, f = name.rsplit("/", 1)[0], int(name.rsplit("/", 1)[1][:-4])
        from PIL import Image

        with Image.open(images_dir / name) as im:
            w, h = im.size
        out.append(f'  <image id="{i}" name="{name}" width="{w}" height="{h}">')
        for k, lab, b in boxes.get((v, f), []):
            out.append(f'    <box label="{lab}" source="manual" occluded="0" xtl="{b[0]:.2f}" '
                       f'ytl="{b[1]:.2f}" xbr="{b[2]:.2f}" ybr="{b[3]:.2f}" z_order="0">')
            out.append(f'      <attribute name="track">{k}</attribute>')
            out.append("    </box>")
        out.append("  </image>")
    out.append("</annotations>")
    return "\n".join(out) + "\n"


def test_cvat_images_round_trip(run, ds):
    p = open_pending(run, ds)
    out = export_cvat(p, run / "cvat")
    names = {str(q.relative_to(out / "images")) for q in (out / "images").rglob("*.jpg")}
    assert names == {image_name(r.video, f) for r in p.requests for f in r.frames}
    labels = json.loads((out / "labels.json").read_text())
    assert [x["name"] for x in labels] == ds.classes
    assert "claus.annotate" in (out / "README.md").read_text()
    # The JPEGs are the frames.
    from PIL import Image

    r = p.requests[0]
    with Image.open(out / "images" / image_name(r.video, r.frames[0])) as im:
        img = np.asarray(im.convert("RGB"), dtype=np.float32)
    ref = ds.read_frames(r.video, [r.frames[0]])[0].astype(np.float32)
    assert np.abs(img - ref).mean() < 6
    xml = run / "annotations.xml"
    xml.write_text(_cvat_images_xml(p, out / "images"))
    rep = import_files(p, [xml], "cvat-images")
    got = imported(p)
    assert canon(got) == canon(expected(p))
    assert_tracks_linked(p, got)
    assert rep.labelled_frames == sum(len(r.frames) for r in p.requests)
    assert rep.no_actor_frames == sum(1 for r in p.requests for f in r.frames
                                      if not ds[r.video].boxes_at(f))


def _cvat_video_xml(p, video: str, start: int = 0, step: int = 1) -> str:
    """A "CVAT for video 1.1" export of a task on one video: a track per ground-truth tube with
    keyframes at the requested frames, interpolated (keyframe=0) boxes between them, and an
    outside keyframe after the last one."""
    v = p.dataset[video]
    size = (v.num_frames - 1 - start) // step + 1
    out = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>",
           "  <meta>", "    <task>", "      <id>3</id>", f"      <name>{video}</name>",
           f"      <size>{size}</size>", "      <mode>interpolation</mode>",
           f"      <start_frame>{start}</start_frame>",
           f"      <stop_frame>{start + (size - 1) * step}</stop_frame>",
           f"      <frame_filter>step={step}</frame_filter>",
           f"      <original_size><width>{v.width}</width><height>{v.height}</height>"
           "</original_size>", "    </task>", "  </meta>"]
    req = set(p.requested()[video])
    for k, t in enumerate(v.tubes):
        frames = [f for f in sorted(req) if t.box(f) is not None]
        if not frames:
            continue
        out.append(f'  <track id="{k}" label="{p.dataset.classes[t.label]}" source="manual">')
        rows = []
        for f in range(frames[0], frames[-1] + 1):
            if (f - start) % step or t.box(f) is None:
                continue
            rows.append((f, 0, int(f in req), t.box(f)))
        if frames[-1] + step < v.num_frames:
            rows.append((frames[-1] + step, 1, 1, t.boxes[-1]))
        for f, outside, key, b in rows:
            out.append(f'    <box frame="{(f - start) // step}" keyframe="{key}" '
                       f'outside="{outside}" occluded="0" xtl="{b[0]:.2f}" ytl="{b[1]:.2f}" '
                       f'xbr="{b[2]:.2f}" ybr="{b[3]:.2f}" z_order="0"></box>')
        out.append("  </track>")
    out.append("</annotations>")
    return "\n".join(out) + "\n"


def test_cvat_video_round_trip(run, ds):
    p = open_pending(run, ds)
    files = []
    for r in p.requests:
        files.append(run / f"task{len(files)}.xml")
        files[-1].write_text(_cvat_video_xml(p, r.video))
    rep = import_files(p, files, "cvat-xml")
    got = imported(p)
    assert canon(got) == canon(expected(p))
    assert_tracks_linked(p, got)
    assert not rep.extra and not rep.missing  # interpolated and outside boxes do not count
    # Task frame i is video frame start_frame + i·step: a task on every other frame from 1.
    r = next(q for q in p.requests if any(f % 2 for f in q.frames))
    (run / "stepped.xml").write_text(_cvat_video_xml(p, r.video, start=1, step=2))
    rep = import_files(p, [run / "stepped.xml"], "cvat-xml", allow_missing=True)
    got, want = imported(p), expected(p)
    odd = [f for f in r.frames if f % 2]
    assert got.frames(r.video) == sorted(set(p.labels.frames(r.video)) | set(odd))
    assert [canon(got)[r.video][f] for f in odd] == [canon(want)[r.video][f] for f in odd]
    assert rep.missing[r.video] == [f for f in r.frames if not f % 2] and not rep.extra


# ---------------------------------------------------------------------------- Label Studio
def _labelstudio_export(p, tasks: list[dict]) -> list[dict]:
    """The Label Studio JSON export of the imported tasks after labelling: a videorectangle
    region per ground-truth tube, a keyframe at each requested frame (1-based, percentages)."""
    ds = p.dataset
    out = []
    for i, task in enumerate(tasks):
        video = task["data"]["claus_video"]
        v = ds[video]
        fps = task["data"]["fps"]
        # Percentages of the size of the task's video.
        width, height = task["data"].get("claus_size", (v.width, v.height))
        result = []
        for k, t in enumerate(v.tubes):
            seq = []
            for f1 in task["data"]["frames"]:
                b = t.box(f1 - 1)
                if b is None:
                    continue
                seq.append({"frame": f1, "enabled": True, "rotation": 0,
                            "x": 100 * float(b[0]) / width, "y": 100 * float(b[1]) / height,
                            "width": 100 * float(b[2] - b[0]) / width,
                            "height": 100 * float(b[3] - b[1]) / height, "time": f1 / fps})
            if seq:
                seq[-1]["enabled"] = False
                result.append({"id": f"r{k}x", "from_name": "box", "to_name": "video",
                               "type": "videorectangle", "origin": "manual",
                               "value": {"framesCount": v.num_frames,
                                         "duration": v.num_frames / fps, "sequence": seq,
                                         "labels": [ds.classes[t.label]]}})
        out.append({"id": 100 + i, "data": task["data"], "predictions": task.get("predictions", []),
                    "annotations": [
                        {"id": 1, "was_cancelled": True, "result": [{"type": "videorectangle",
                                                                     "value": {}}],
                         "updated_at": "2030-01-01T00:00:00Z"},
                        {"id": 2, "was_cancelled": False, "result": result,
                         "created_at": "2024-05-01T10:00:00Z",
                         "updated_at": "2024-05-01T10:05:00Z"}]})
    return out


def test_labelstudio_round_trip(run, ds):
    p = open_pending(run, ds)
    out = export_labelstudio(p, run / "ls", predictions=False,
                             video_url="http://localhost:8081/{video}.mp4")
    tasks = json.loads((out / "tasks.json").read_text())
    assert [t["data"]["claus_video"] for t in tasks] == list(p.selection.frames)
    assert tasks[0]["data"]["video"] == f"http://localhost:8081/{tasks[0]['data']['claus_video']}.mp4"
    for t in tasks:
        assert t["data"]["frames"] == [f + 1 for f in sorted(p.selection.frames[
            t["data"]["claus_video"]])]
    config = (out / "config.xml").read_text()
    assert "<VideoRectangle" in config and all(f'"{c}"' in config for c in ds.classes)
    export = run / "export.json"
    done = _labelstudio_export(p, tasks)
    # One project may hold every round's tasks: another round's task is skipped.
    old = json.loads(json.dumps(done[0]))
    old["data"]["claus_round"] = 7
    old["annotations"][1]["result"] = [{"id": "z", "type": "videorectangle", "value": {
        "labels": ["no-such-class"], "sequence": [{"frame": 1, "x": 1, "y": 1, "width": 1,
                                                   "height": 1}]}}]
    export.write_text(json.dumps(done + [old]))
    rep = import_files(p, [export], "labelstudio")
    assert any("belongs to round 7, ignored" in n for n in rep.notes)
    got = imported(p)
    assert canon(got) == canon(expected(p))
    assert_tracks_linked(p, got)


def test_labelstudio_predictions_have_scores(run, ds):
    p = open_pending(run, ds)
    out = export_labelstudio(p, run / "ls", fg_threshold=0.0)  # threshold 0: a box per frame
    tasks = json.loads((out / "tasks.json").read_text())
    for t in tasks:
        (pred,) = t["predictions"]
        assert 0 <= pred["score"] <= 1 and pred["result"]
        frames = t["data"]["frames"]
        for res in pred["result"]:
            assert res["type"] == "videorectangle" and 0 <= res["score"] <= 1
            # A tube is one track: a keyframe on each requested frame it spans, enabled up to
            # the last one, which ends it.
            seq = res["value"]["sequence"]
            assert [x["frame"] for x in seq] == [f for f in frames if f in
                                                 {x["frame"] for x in seq}]
            assert [x["enabled"] for x in seq] == [True] * (len(seq) - 1) + [False]
            assert res["value"]["labels"][0] in ds.classes
            for item in seq:
                assert 0 <= item["x"] <= 100 and 0 < item["width"] <= 100


# ---------------------------------------------------------------------------- AVA CSV
def _write_ava(p, path: Path, rows: list | None = None) -> Path:
    """AVA-style rows of the intended boxes (plus `rows`), normalized, with a header."""
    ds = p.dataset
    lines = [["video", "frame", "x1", "y1", "x2", "y2", "label", "track"]]
    for v, f, k, lab, b in gt(p):
        w, h = ds[v].width, ds[v].height
        lines.append([v, f, b[0] / w, b[1] / h, b[2] / w, b[3] / h, ds.classes[lab], k])
    lines += rows or []
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(lines)
    return path


def test_ava_csv_round_trip_is_idempotent(run, ds):
    p = open_pending(run, ds)
    f = _write_ava(p, run / "boxes.csv")
    rep = import_files(p, [f], "ava-csv")
    assert not rep.replaced and rep.written
    got = imported(p)
    assert canon(got) == canon(expected(p))
    assert_tracks_linked(p, got)
    first = (p.folder / "next_labels.json").read_bytes()
    rep = import_files(open_pending(run, ds), [f], "ava-csv")
    assert rep.replaced and (p.folder / "next_labels.json").read_bytes() == first
    doc = json.loads((p.folder / "import.json").read_text())
    assert doc["files"][0]["path"] == str(f) and doc["report"]["boxes"] == len(gt(p))


def test_import_rules_missing_extra_clipped(run, ds):
    p = open_pending(run, ds)
    req = p.requests
    v0, f0 = req[0].video, req[0].frames[0]
    n0 = ds[v0].num_frames
    unrequested = next(f for f in range(n0) if f not in req[0].frames
                       and not p.labels.is_labelled(v0, f))
    lab_before = next((v, f) for v in p.labels.videos for f in p.labels.frames(v))
    lab = ds.classes[0]
    rows = [[v0, unrequested, 0.1, 0.1, 0.3, 0.3, lab, "x"],         # extra frame
            [lab_before[0], lab_before[1], 0.1, 0.1, 0.2, 0.2, lab, "y"],  # labelled in round 0
            [v0, f0, 0.9, 0.9, 1.2, 1.1, lab, "c"],                   # reaches outside: clipped
            [v0, f0, 1.1, 1.1, 1.3, 1.3, lab, "d"]]                   # fully outside: dropped
    # Missing: the last video is absent from the file.
    gone = req[-1].video
    path = _write_ava(p, run / "b.csv", rows)
    path.write_text("\n".join(x for x in path.read_text().splitlines()
                              if not x.startswith(gone + ",")) + "\n")
    with pytest.raises(AnnotationFileError, match=rf"requested frames are not in the file.*{gone}"
                       r".*--allow-missing"):
        import_files(p, [path], "ava-csv")
    assert not (p.folder / "next_labels.json").exists()
    rep = import_files(p, [path], "ava-csv", allow_missing=True)
    got = imported(p)
    assert rep.missing == {gone: list(req[-1].frames)} and not got.frames(gone) == list(
        req[-1].frames)
    assert all(not got.is_labelled(gone, f) for f in req[-1].frames)
    assert rep.extra[v0] == [unrequested] and not got.is_labelled(v0, unrequested)
    assert rep.clipped == 1 and rep.dropped_outside == 1
    (clipped,) = [b for b in got.boxes(v0, f0) if b.box[2] == ds[v0].width]
    assert clipped.box[3] == ds[v0].height and clipped.box[0] == pytest.approx(0.9 * ds[v0].width)
    assert "1 boxes clipped, 1 dropped" in rep.summary()
    # --accept-extra labels the extra frame, never a frame an earlier round labelled.
    rep = import_files(p, [path], "ava-csv", allow_missing=True, accept_extra=True)
    got = imported(p)
    assert rep.extra_accepted == 1 and rep.extra_already_labelled == 1
    assert got.rounds(v0)[unrequested] == p.label_round and len(got.boxes(v0, unrequested)) == 1
    assert got.boxes(*lab_before) == p.labels.boxes(*lab_before)


def test_requested_frame_without_boxes_is_no_actor(run, ds):
    p = open_pending(run, ds)
    r = p.requests[0]
    path = _write_ava(p, run / "b.csv")
    # Only one box row for the first video: its other requested frames are "no actor".
    keep_first = [x for x in path.read_text().splitlines() if x.startswith(r.video + ",")][:1]
    path.write_text("\n".join(x for x in path.read_text().splitlines()
                              if not x.startswith(r.video + ",")) + "\n" + "\n".join(keep_first)
                    + "\n")
    rep = import_files(p, [path], "ava-csv")
    got = imported(p)
    kept = {int(x.split(",")[1]) for x in keep_first}
    assert all(got.is_labelled(r.video, f) for f in r.frames)
    assert {f for f in r.frames if got.boxes(r.video, f)} == kept
    assert all(got.rounds(r.video)[f] == p.label_round for f in r.frames)
    want = sum(1 for q in p.requests for f in q.frames
               if not (q.video == r.video and f in kept) and (
                   q.video == r.video or not ds[q.video].boxes_at(f)))
    assert rep.no_actor_frames == want


def test_cvat_interpolated_box_without_keyframe(run, ds):
    p = open_pending(run, ds)
    r = next(q for q in p.requests if sum(bool(ds[q.video].boxes_at(f)) for f in q.frames) >= 3)
    boxed = [f for f in r.frames if len(ds[r.video].boxes_at(f)) == 1]
    mid = boxed[1]  # a requested frame between two keyframes of its only track
    xml = _cvat_video_xml(p, r.video).replace(f'<box frame="{mid}" keyframe="1"',
                                              f'<box frame="{mid}" keyframe="0"')
    (run / "task.xml").write_text(xml)
    rep = import_files(p, [run / "task.xml"], "cvat-xml", allow_missing=True)
    # CVAT shows the box interpolated between the neighbouring keyframes there.
    (a, *_), (b, *_) = ([g[2] for g in ds[r.video].boxes_at(f)] for f in (boxed[0], boxed[2]))
    t = (mid - boxed[0]) / (boxed[2] - boxed[0])
    want = np.round(np.asarray(a, np.float64) * (1 - t) + np.asarray(b, np.float64) * t, 2)
    (got,) = imported(p).boxes(r.video, mid)
    assert np.allclose(got.box, want, atol=0.02)
    assert rep.interpolated == 1 and "interpolation between keyframes" in rep.summary()


def test_cvat_images_bare_names_with_video(run, ds):
    p = open_pending(run, ds)
    r = p.requests[0]
    v = ds[r.video]
    images = "".join(f'<image id="{i}" name="frame_{f:06d}.PNG" width="{2 * v.width}" '
                     f'height="{2 * v.height}"><box label="{ds.classes[0]}" xtl="2" ytl="4" '
                     f'xbr="10" ybr="20" occluded="0"/></image>' for i, f in enumerate(r.frames))
    (run / "a.xml").write_text(f"<annotations><version>1.1</version>{images}</annotations>")
    with pytest.raises(AnnotationFileError, match="unknown videos"):
        import_files(p, [run / "a.xml"], "cvat-images", allow_missing=True)
    import_files(p, [run / "a.xml"], "cvat-images", video=r.video, allow_missing=True)
    got = imported(p)
    # Image pixels (twice the size) scaled back to the video's; no track: one tube per box.
    got_boxes = [b.box for f in r.frames for b in got.boxes(r.video, f)]
    assert got_boxes == [(1.0, 2.0, 5.0, 10.0)] * len(r.frames)
    assert len({b.tube for f in r.frames for b in got.boxes(r.video, f)}) == len(r.frames)
    with pytest.raises(AnnotationFileError, match="holds images, not video tracks"):
        import_files(p, [run / "a.xml"], "cvat-xml")


# ---------------------------------------------------------------------------- malformed
def _unchanged(p) -> None:
    assert not (p.folder / "next_labels.json").exists()
    assert not (p.folder / "import.json").exists()


def test_truncated_xml_is_refused(run, ds):
    p = open_pending(run, ds)
    out = export_cvat(p, run / "cvat")
    text = _cvat_images_xml(p, out / "images")
    (run / "cut.xml").write_text(text[: len(text) // 2])
    with pytest.raises(AnnotationFileError, match=r"cut\.xml: not well-formed XML.*complete"):
        import_files(p, [run / "cut.xml"], "cvat-images")
    _unchanged(p)
    (run / "evil.xml").write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]>'
                                  "<annotations/>")
    with pytest.raises(AnnotationFileError, match="ENTITY"):
        import_files(p, [run / "evil.xml"], "cvat-images")
    _unchanged(p)


def test_wrong_frame_count_is_refused(run, ds):
    p = open_pending(run, ds)
    r = p.requests[0]
    n = ds[r.video].num_frames
    xml = _cvat_video_xml(p, r.video).replace(f"<size>{n}</size>", f"<size>{n + 5}</size>")
    (run / "long.xml").write_text(xml)
    with pytest.raises(AnnotationFileError, match=rf"wrong frame count.*{n} frames"):
        import_files(p, [run / "long.xml"], "cvat-xml", allow_missing=True)
    export = _labelstudio_export(p, json.loads((export_labelstudio(
        p, run / "ls", predictions=False) / "tasks.json").read_text()))
    region = next(res for t in export for res in t["annotations"][1]["result"])
    region["value"]["framesCount"] += 3
    (run / "ls.json").write_text(json.dumps(export))
    with pytest.raises(AnnotationFileError, match=r"wrong frame count: Label Studio counted"):
        import_files(p, [run / "ls.json"], "labelstudio")
    bad = _write_ava(p, run / "far.csv", [[r.video, n + 2, 0.1, 0.1, 0.2, 0.2, ds.classes[0],
                                           "1"]])
    with pytest.raises(AnnotationFileError, match=r"frames out of range"):
        import_files(p, [bad], "ava-csv")
    _unchanged(p)


def test_unknown_labels_and_videos_are_listed(run, ds):
    p = open_pending(run, ds)
    r = p.requests[0]
    bad = _write_ava(p, run / "bad.csv", [[r.video, r.frames[0], 0.1, 0.1, 0.2, 0.2, "dance",
                                           "1"],
                                          [r.video, r.frames[0], 0.1, 0.1, 0.2, 0.2, "fly", "2"]])
    with pytest.raises(AnnotationFileError, match=r"unknown labels 'dance', 'fly'; the classes"):
        import_files(p, [bad], "ava-csv")
    test_video = ds[ds.split_indices("test")[0]].name
    bad = _write_ava(p, run / "bad2.csv", [["nope/v1", 0, 0.1, 0.1, 0.2, 0.2, "walk", "1"],
                                           [test_video, 0, 0.1, 0.1, 0.2, 0.2, "walk", "1"]])
    with pytest.raises(AnnotationFileError, match=rf"unknown videos .*'nope/v1', '{test_video}'"):
        import_files(p, [bad], "ava-csv")
    _unchanged(p)
    # A failed import leaves an earlier import untouched.
    good = _write_ava(p, run / "good.csv")
    import_files(p, [good], "ava-csv")
    before = (p.folder / "next_labels.json").read_bytes()
    with pytest.raises(AnnotationFileError):
        import_files(p, [good, bad], "ava-csv")
    assert (p.folder / "next_labels.json").read_bytes() == before


def test_one_track_two_boxes_on_a_frame_is_refused(run, ds):
    p = open_pending(run, ds)
    r = p.requests[0]
    bad = _write_ava(p, run / "dup.csv", [[r.video, r.frames[0], 0.1, 0.1, 0.2, 0.2, "walk", "t"],
                                          [r.video, r.frames[0], 0.5, 0.5, 0.6, 0.6, "walk", "t"]])
    with pytest.raises(AnnotationFileError, match=r"track 't' \(walk\) has two boxes on frame"):
        import_files(p, [bad], "ava-csv")


# ---------------------------------------------------------------------------- CLI
def test_cli_round_trip(tmp_path, ds, cache, monkeypatch, capsys):
    monkeypatch.setenv("CLAUS_CACHE", str(cache))
    out = tmp_path / "runs"
    rc = train_main(["--strategy", "random", "--oracle", "human", "--preset", "tiny",
                     "--init", "5", "--step", "5", "--target", "10", "--videos-per-round", "2",
                     "--epochs", "1", "--batch-size", "8", "--min-clips-per-epoch", "0",
                     "--device", "cpu", "--out", str(out),
                     "--quiet"])
    run = out / "random" / "seed0"
    assert rc == 0 and "waits for human labels" in capsys.readouterr().out
    assert (run / "round_000.partial" / "selection.json").is_file()
    # Resuming before the import stops again, exit 0.
    assert train_main(["--resume", str(run), "--quiet"]) == 0
    assert "waits for human labels" in capsys.readouterr().out
    assert select_main(["--run", str(run), "--format", "labelstudio", "--fg-threshold",
                        "0.01"]) == 0
    text = capsys.readouterr().out
    ls = run / "round_000.partial" / "export" / "labelstudio" / "tasks.json"
    assert str(ls.parent) in text and "--format labelstudio" in text
    assert all(0 <= t["predictions"][0]["score"] <= 1 for t in json.loads(ls.read_text()))
    assert select_main(["--run", str(run), "--format", "jsonl", "--out", str(tmp_path / "j")]) == 0
    capsys.readouterr()
    p = open_pending(run, ds)
    csv_path = _write_ava(p, tmp_path / "boxes.csv", [[p.requests[0].video, 0, 0, 0, 0.5, 0.5,
                                                       "dance", "1"]])
    assert annotate_main(["--run", str(run), "--file", str(csv_path), "--format",
                          "ava-csv"]) == 2
    assert "unknown labels 'dance'" in capsys.readouterr().err
    csv_path = _write_ava(p, tmp_path / "boxes.csv")
    assert annotate_main(["--run", str(run), "--file", str(csv_path), "--format", "ava-csv",
                          "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out and not p.imported
    assert annotate_main(["--run", str(run), "--file", str(csv_path), "--format",
                          "ava-csv"]) == 0
    assert "claus.train --resume" in capsys.readouterr().out
    want = imported(p)
    assert train_main(["--resume", str(run), "--quiet"]) == 0
    assert [json.loads(x)["round"] for x in (run / "metrics.jsonl").read_text().splitlines()] \
        == [0, 1]
    assert LabelState.load(run / "round_001" / "labels.json", ds) == want
    assert select_main(["--run", str(run), "--format", "cvat"]) == 2
    assert "no round" in capsys.readouterr().err
    assert train_main(["--resume", str(run), "--lr", "1"]) == 2


@pytest.mark.parametrize("main", [select_main, annotate_main])
def test_cli_help(main, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "--run" in capsys.readouterr().out
