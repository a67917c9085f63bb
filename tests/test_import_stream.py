"""Streaming importers: AVA-style CSV (dataset and annotation imports) and Label Studio exports
are read without a Python object per row or task, give what the row-at-a-time algorithm gives,
and repeated notes are summarised.

References here are written independently of the code under test: the dataset import is
recomputed with plain dictionaries and Python floats (the algorithm the importer had before it
streamed), annotation imports are compared with the simulated oracle and with the frames the
rows name, JSON parsing with `json.loads`.
"""

from __future__ import annotations

import csv
import json
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from claus.annotate import main as annotate_main
from claus.annotation import import_files, open_pending, read_ava_csv
from claus.annotation.importer import NOTES_KEPT
from claus.annotation.labelstudio import export_tasks
from claus.data.ava_csv import boxes_json
from claus.data.custom import CustomFormatError, import_ava_csv, write_ava_dataset

import tests.test_annotation as ta
from tests.test_annotation import run, waiting  # noqa: F401  (fixtures)


# ---------------------------------------------------------------------------- JSON text
def test_boxes_json_is_json_of_rounded_floats():
    rng = np.random.default_rng(0)
    # Ties of the binary value (2.675 is below its decimal), a negative zero after rounding,
    # whole numbers, and values where '%.2f' would need an exponent in repr (the slow way).
    fixed = np.array([[2.675, 0.125, -0.004, 10.0], [1e12 + 0.005, 3.0, 0.1, 99.995],
                      [1e14, 5e15, -1e13, 0.0]])
    cases = [fixed, fixed[:2], np.zeros((1, 4))]
    cases += [rng.uniform(-1, 1, (int(rng.integers(1, 40)), 4)) * 10 ** rng.uniform(-3, 14)
              for _ in range(200)]
    cases += [np.round(rng.uniform(0, 320, (30, 4)), k) for k in range(4)]
    for b in cases:
        assert boxes_json(b) == json.dumps([[round(float(x), 2) for x in r] for r in b])


JSON_CASES = [
    "[]", " [ ] ", "[1, 2, 3]", '[{"a": 1}, {"b": [1, 2, {"c": "x"}]}]', '{"data": {}}', "5",
    '"s"', "[1,2", "[1,,2]", "[1 2]", "[1]x", "", "  ", "\ufeff[1]", "[1,]", '[{"a":1}] ',
    '[{"a": "' + "é" * 50 + '"}, 12345678901234567890, -1.5e10, true, null, 1E-5, 0.25]',
    "[NaN, Infinity, -Infinity]", "[1x]", "[tru]", '[{"a":1}{"b":2}]',
    '[\n{"a" : 1}\n,\n{"b":2}\n]\n',
]


@pytest.mark.parametrize("text", JSON_CASES)
def test_export_tasks_parse_as_json_loads(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_text(text, encoding="utf-8")
    try:
        value = json.loads(text)
        want = ("ok", value if isinstance(value, list) else [value])
    except json.JSONDecodeError as e:
        want = ("error", str(e))
    for chunk in (1, 2, 3, 7, 1 << 20):  # elements cut by the buffer anywhere
        try:
            got = ("ok", list(export_tasks(path, chunk)))
        except json.JSONDecodeError as e:
            got = ("error", str(e))
        assert repr(got) == repr(want), chunk


def test_export_tasks_bad_utf8_is_the_whole_file_error(tmp_path):
    path = tmp_path / "b.json"
    path.write_bytes(b'[{"a": 1}, {"b": "\xff"}]')
    with pytest.raises(UnicodeDecodeError) as want:
        path.read_text(encoding="utf-8")
    for chunk in (1, 4, 1 << 20):
        with pytest.raises(UnicodeDecodeError) as got:
            list(export_tasks(path, chunk))
        assert str(got.value) == str(want.value)


# ---------------------------------------------------------------------------- dataset import
def reference_import(path: Path, videos: dict, classes=None, time_unit="seconds", fps=None,
                     max_gap=None, split="train", name="ava-import") -> dict:
    """The AVA CSV → dataset JSON conversion, a row at a time in dictionaries (no numpy)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for ln, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                t, box = float(row[1]), [float(x) for x in row[2:6]]
            except ValueError:
                assert ln == 1
                continue
            rows.append((row[0].strip(), t, box, row[6].strip(), row[7].strip()))
    labels = sorted({r[3] for r in rows}) if classes is None else list(classes)
    tracks: dict[tuple, dict[int, list[float]]] = {}
    for vid, t, box, lab, track in rows:
        info = videos[vid]
        rate = info.get("fps", fps) if time_unit == "seconds" else 1
        lab_i = labels.index(lab) if lab in labels else int(lab)
        W, H = info["width"], info["height"]
        tracks.setdefault((vid, track, lab_i), {})[round(t * rate)] = [
            box[0] * W, box[1] * H, box[2] * W, box[3] * H]  # the last row of a frame counts
    per_video: dict[str, list] = {}
    for (vid, _, lab), fb in sorted(tracks.items()):
        rate = videos[vid].get("fps", fps)
        gap = max_gap if max_gap is not None else (round(rate) if rate else 1)
        frames = sorted(fb)
        segments = [[frames[0]]]
        for f in frames[1:]:
            if f - segments[-1][-1] <= gap:
                segments[-1].append(f)
            else:
                segments.append([f])
        for seg in segments:
            boxes = []
            for f in range(seg[0], seg[-1] + 1):
                if f in fb:
                    b = fb[f]
                else:  # between keyframes a < f < c: the line through them (np.interp's form)
                    a = max(x for x in seg if x < f)
                    c = min(x for x in seg if x > f)
                    b = [(fb[c][j] - fb[a][j]) / (c - a) * (f - a) + fb[a][j] for j in range(4)]
                boxes.append([round(x, 2) for x in b])
            per_video.setdefault(vid, []).append({"label": lab, "start": seg[0],
                                                  "boxes": boxes})
    out = []
    for vid, info in videos.items():
        tubes = per_video.get(vid, [])
        counts: dict[int, int] = {}
        for t in tubes:
            counts[t["label"]] = counts.get(t["label"], 0) + 1
        top = max(counts.values(), default=0)
        d = {"name": vid, "label": next((k for k, c in counts.items() if c == top), -1),
             "split": info.get("split", split), "num_frames": info["num_frames"],
             "width": info["width"], "height": info["height"]}
        d.update({k: info[k] for k in ("group", "frames", "first_frame", "video", "array")
                  if k in info})
        d["tubes"] = tubes
        out.append(d)
    return {"format": "claus.dataset", "version": 1, "name": name, "classes": labels,
            "videos": out}


def ava_file(path: Path, seed: int, seconds: bool = True) -> tuple[dict, int]:
    """A generated AVA CSV of a few thousand rows: several videos and tracks, two actions of
    one actor, keyframes one second apart and gaps longer than that, rows on one frame twice
    (different boxes), rows out of order, a header and blank rows. Returns (videos, rows)."""
    rng = random.Random(seed)
    videos = {f"v{k}": {"num_frames": rng.randint(60, 300), "width": rng.choice([320, 101]),
                        "height": rng.choice([240, 45]), "fps": rng.choice([25, 30, 12.5]),
                        "split": rng.choice(["train", "test"])} for k in range(20)}
    videos["v3"]["group"] = "g1"
    videos["v5"]["video"] = "videos/v5.mp4"
    del videos["v7"]["fps"]  # the --fps default
    videos["unused"] = {"num_frames": 10, "width": 8, "height": 8}
    lines = []
    for vid, info in videos.items():
        if vid == "unused":
            continue
        rate = info.get("fps", 10.0)
        for track in range(rng.randint(1, 4)):
            actions = rng.sample(["wave", "jump", "run", "3"], rng.randint(1, 2))
            f = rng.randint(0, 20)
            while f < info["num_frames"]:
                x, y = rng.random() * 0.5, rng.random() * 0.5
                for act in actions:
                    t = f / rate if seconds else f
                    lines.append(f"{vid},{t!r},{x:.4f},{y:.4f},{x + 0.3:.4f},{y + 0.4:.4f},"
                                 f"{act},{track}")
                if rng.random() < 0.05:  # the same frame again, another box: the last counts
                    lines.append(lines[-1].replace(f"{x:.4f},", f"{x / 2:.4f},", 1))
                f += rng.choice([1] * 12 + [2, int(rate), int(rate) + 1, 3 * int(rate)])
    order = list(range(len(lines)))
    rng.shuffle(order)
    text = ["video,t,x1,y1,x2,y2,action,person"] + [lines[i] for i in order]
    text.insert(50, "")
    text.insert(90, " , ,")
    path.write_text("\n".join(text) + "\n")
    return videos, len(lines)


@pytest.mark.parametrize("kw", [{}, {"max_gap": 3, "fps": 10.0},
                                {"classes": ["wave", "jump", "run", "hop"], "fps": 10.0}])
def test_dataset_import_matches_the_row_at_a_time_reference(tmp_path, kw):
    path = tmp_path / "a.csv"
    videos, n = ava_file(path, seed=len(kw))
    assert n > 2000
    kw.setdefault("fps", 10.0)
    want = reference_import(path, videos, **kw)
    assert sum(len(v["tubes"]) for v in want["videos"]) > 30
    assert import_ava_csv(path, videos, **kw) == want
    out = tmp_path / "ds.json"
    counts = write_ava_dataset(path, out, videos, **kw)
    # The file is the document atomic_write_json writes, byte for byte.
    assert out.read_text() == json.dumps(want, allow_nan=False, ensure_ascii=False) + "\n"
    assert counts == (len(videos), sum(len(v["tubes"]) for v in want["videos"]),
                      len(want["classes"]))


def test_dataset_import_frame_unit(tmp_path):
    path = tmp_path / "a.csv"
    videos, _ = ava_file(path, seed=7, seconds=False)
    want = reference_import(path, videos, time_unit="frame", fps=10.0)
    assert import_ava_csv(path, videos, time_unit="frame", fps=10.0) == want


@pytest.mark.parametrize("rows, message", [
    # The first bad row is named, with its first failed check (video, fps, frame, box, label).
    (["v,0.1,0.1,0.1,0.2,0.2,a,0", "v,0.2,0.1,0.1,5,0.2,a,0", "x,0.1,0.1,0.1,0.2,0.2,a,0"],
     r"a.csv:2: box \[0.1, 0.1, 5.0, 0.2\] is not normalized"),
    (["v,0.1,0.1,0.1,0.2,0.2,a,0", "x,0.2,0.1,0.1,5,0.2,a,0"],
     "a.csv:2: video 'x' is not in the videos table"),
    (["v,0.1,0.1,0.1,0.2,0.2,a,0", "w,0.2,0.1,0.1,5,0.2,a,0"], "a.csv:2: video 'w': timestamps "
     "need fps"),
    (["v,9,0.1,0.1,0.2,0.2,a,0", "v,0.1,2,0.1,0.2,0.2,a,0"],
     r"a.csv:1: video 'v': frame 90 outside \[0, 50\)"),
    (["v,0.1,0.1,0.1,0.2,0.2,a,0", "v,0.2,0.1,0.1,0.2,0.2,zz,0"], "a.csv:2: unknown label 'zz'"),
    # Malformed rows anywhere come before the checks of well-formed ones.
    (["x,0.1,0.1,0.1,0.2,0.2,a,0", "v,nope,0.1,0.1,0.2,0.2,a,0"], "a.csv:2: time and box must "
     "be numbers"),
    (["header,t,x1,y1,x2,y2,a,p", ""], "a.csv: no annotation rows"),
])
def test_dataset_import_errors_name_the_first_bad_row(tmp_path, rows, message):
    path = tmp_path / "a.csv"
    path.write_text("\n".join(rows) + "\n")
    videos = {"v": {"num_frames": 50, "width": 10, "height": 10, "fps": 10},
              "w": {"num_frames": 50, "width": 10, "height": 10}}
    with pytest.raises(CustomFormatError, match=message):
        import_ava_csv(path, videos, classes=["a", "b"])


# ---------------------------------------------------------------------------- annotation import
def _extra_rows(p, seed: int, per_frame: int = 6) -> tuple[list[list], dict[str, list[int]]]:
    """Rows on frames nobody requested (every frame of every pool video, `per_frame` actors
    each) and {video: those frames} in the importer's order (videos by name)."""
    rng = random.Random(seed)
    ds, requested = p.dataset, p.requested()
    rows, extra = [], {}
    for v in sorted(p.labels.num_frames):
        for f in range(ds[v].num_frames):
            if f in requested.get(v, ()):
                continue
            extra.setdefault(v, []).append(f)
            for k in range(per_frame):
                x, y = rng.random() / 2, rng.random() / 2
                rows.append([v, f, x, y, x + 0.3, y + 0.4, ds.classes[k % ds.num_classes],
                             f"t{k}"])
    rng.shuffle(rows)
    return rows, extra


def test_ava_annotation_import_with_thousands_of_extra_rows(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    rows, extra = _extra_rows(p, seed=1)
    assert len(rows) > 2000
    path = ta._write_ava(p, run / "boxes.csv", rows)
    rep = import_files(p, [path], "ava-csv")
    assert ta.canon(ta.imported(p)) == ta.canon(ta.expected(p))
    assert rep.extra == extra and list(rep.extra) == sorted(extra)
    assert rep.boxes == len(ta.gt(p))


def test_ava_boxes_read_as_the_rows_say(run, ds, tmp_path):  # noqa: F811
    p = open_pending(run, ds)
    rows, _ = _extra_rows(p, seed=2, per_frame=2)
    rows += [["no-such-video", 3, 0.1, 0.1, 0.2, 0.2, "walk", ""]]
    path = ta._write_ava(p, tmp_path / "b.csv", rows)
    got = read_ava_csv(path, p)
    want = []
    with open(path, newline="") as fh:
        for ln, r in enumerate(csv.reader(fh), start=1):
            if ln == 1 or r[0] not in p.labels.num_frames:
                continue
            v = ds[r[0]]
            label = r[6] if r[6] in ds.classes else ds.classes[int(r[6])]
            box = (float(r[2]) * v.width, float(r[3]) * v.height, float(r[4]) * v.width,
                   float(r[5]) * v.height)
            want.append((r[0], int(r[1]), label, box, r[7] or None,
                         f"{path}:{ln} ({r[0]} frame {int(r[1])})", True))
    assert [(b.video, b.frame, b.label, b.box, b.track, b.where, b.keyframe)
            for b in got.boxes] == want
    assert got.unknown_videos == ["no-such-video"]
    assert got.boxes[-1] == list(got.boxes)[-1] and len(got.boxes[:3]) == 3


# ---------------------------------------------------------------------------- notes
def test_repeated_notes_are_one_line_per_kind_and_capped(run, ds, capsys):  # noqa: F811
    p = open_pending(run, ds)
    tasks = json.loads((ta.export_labelstudio(p, run / "ls", predictions=False)
                        / "tasks.json").read_text())
    done = ta._labelstudio_export(p, tasks)
    # One project holding many earlier rounds' tasks: each is skipped with a note.
    old = []
    for k in range(NOTES_KEPT + 205):
        t = json.loads(json.dumps(done[k % len(done)]))
        t["id"], t["data"]["claus_round"] = 10_000 + k, k % 3 + 5
        old.append(t)
    path = run / "export.json"
    path.write_text(json.dumps(done + old))
    assert annotate_main(["--run", str(run), "--file", str(path), "--format",
                          "labelstudio"]) == 0
    out = capsys.readouterr().out.splitlines()
    notes = [line for line in out if line.startswith("note:")]
    assert len(out) <= 4 and len(notes) == 1, out
    assert notes[0].startswith(f"note: {len(old)} tasks of other rounds, ignored, e.g. ")
    assert "task 10000 (" in notes[0] and "task 10002 (" in notes[0]
    assert "task 10003 (" not in notes[0]
    report = json.loads((p.folder / "import.json").read_text())["report"]
    assert len(report["notes"]) == NOTES_KEPT
    assert report["notes_truncated"] == len(old) - NOTES_KEPT
    assert report["note_counts"] == {"tasks of other rounds, ignored": len(old)}
    video = old[0]["data"]["claus_video"]
    assert report["notes"][0].endswith(f"task 10000 ({video}) belongs to round 5, ignored")


def test_notes_of_one_kind_keep_single_ones_verbatim(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    tasks = json.loads((ta.export_labelstudio(p, run / "ls", predictions=False)
                        / "tasks.json").read_text())
    done = ta._labelstudio_export(p, tasks)
    done[0]["data"]["claus_round"] = 4  # a single note of its kind: printed as it is
    done[1]["annotations"] = []  # none submitted: its frames are missing
    path = run / "export.json"
    path.write_text(json.dumps(done))
    rep = import_files(p, [path], "labelstudio", allow_missing=True)
    text = rep.summary().splitlines()
    want_round = f"note: {path}: task {done[0]['id']} ({done[0]['data']['claus_video']}) " \
                 "belongs to round 4, ignored"
    assert want_round in text
    assert sum(line.startswith("note:") for line in text) == 2
    assert rep.to_json()["note_counts"] == {"tasks of other rounds, ignored": 1,
                                            "tasks without a submitted annotation": 1}


# ---------------------------------------------------------------------------- memory
def _peak(fn) -> int:
    """Peak bytes Python and numpy allocate while `fn` runs (tracemalloc)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_ava_annotation_rows_are_not_held_as_objects(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    rows, _ = _extra_rows(p, seed=3, per_frame=60)
    path = ta._write_ava(p, run / "many.csv", rows)
    n = len(rows)
    assert n > 20_000
    peak = _peak(lambda: read_ava_csv(path, p))
    # Columns take about 60 bytes a row; the reader that made an ImportedBox and a message per
    # row (and held the parsed rows) took over 1 KB a row.
    assert peak < 150 * n, peak / n


def test_dataset_import_rows_are_not_held_as_objects(tmp_path):
    path = tmp_path / "a.csv"
    videos, n = ava_file(path, seed=11)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + lines[1:] * 7) + "\n")  # repeated rows: same tubes
    n = 8 * n
    peak = _peak(lambda: write_ava_dataset(path, tmp_path / "ds.json", videos, fps=10.0))
    # 48 bytes a row of columns plus sorting; the list of parsed rows alone took ~400 bytes.
    assert peak < 200 * n, peak / n


def test_labelstudio_export_is_not_held_whole(tmp_path):
    task = {"id": 0, "data": {"claus_video": "v", "frames": list(range(50))},
            "annotations": [{"id": 1, "result": [{"value": {"sequence": [
                {"frame": f, "x": 1.5, "y": 2.5, "width": 3.0, "height": 4.0}
                for f in range(40)]}}]}]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([dict(task, id=k) for k in range(3000)]))
    size = path.stat().st_size
    assert size > 8_000_000
    count = 0

    def read():
        nonlocal count
        for t in export_tasks(path):
            count += t["id"] >= 0

    peak = _peak(read)
    assert count == 3000
    # A few 256 KB chunks of text and one task; json.loads holds every task (5.6x the file).
    assert peak < size / 4, peak / size


# ---------------------------------------------------------------------------- duplicate boxes
def _gt_rows(p, track=lambda k, i: "") -> list[list]:
    """AVA rows of the requested frames' ground truth, normalized; `track(tube, i)` gives the
    track column of the i-th row."""
    ds = p.dataset
    rows = []
    for i, (v, f, k, lab, b) in enumerate(ta.gt(p)):
        w, h = ds[v].width, ds[v].height
        rows.append([v, f, b[0] / w, b[1] / h, b[2] / w, b[3] / h, ds.classes[lab],
                     track(k, i)])
    return rows


def _write_rows(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _duplicated(rows: list[list], seed: int) -> tuple[list[list], int]:
    """Every row once, some twice or three times more, shuffled; returns (rows, copies)."""
    rng = random.Random(seed)
    out = [list(r) for r in rows for _ in range(1 + rng.choice([0, 1, 1, 2]))]
    rng.shuffle(out)
    return out, len(out) - len(rows)


def test_identical_boxes_without_track_ids_are_one_actor(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    rows, copies = _duplicated(_gt_rows(p), seed=4)
    assert copies > 5
    half = len(rows) // 2  # two files: a box in both is one actor too
    a = _write_rows(run / "a.csv", rows[:half])
    b = _write_rows(run / "b.csv", rows[half:])
    rep = import_files(p, [a, b], "ava-csv")
    assert ta.canon(ta.imported(p)) == ta.canon(ta.expected(p))
    assert rep.boxes == len(ta.gt(p))
    assert f"{a}, {b}: {copies} identical duplicate boxes without a track id merged" in \
        rep.summary()


def test_identical_boxes_with_track_ids_or_classes_apart_stay_apart(run, ds):  # noqa: F811
    p = open_pending(run, ds)
    gt = _gt_rows(p, lambda k, i: f"a{k}")
    twins = [r[:7] + [f"b{r[7][1:]}"] for r in gt]  # the same boxes, other tracks
    other = ds.classes[1:] + ds.classes[:1]
    untracked = [r[:6] + [other[ds.classes.index(r[6])], ""] for r in gt]  # other class
    path = _write_rows(run / "c.csv", gt + twins + untracked + [r[:7] + [""] for r in gt])
    rep = import_files(p, [path], "ava-csv")
    assert rep.boxes == 4 * len(gt)
    assert not any("duplicate" in n for n in rep.notes)
    got = ta.imported(p)
    for v, f, *_ in gt:
        tubes = [b.tube for b in got.boxes(v, f)]
        assert len(tubes) == len(set(tubes))  # four actors per ground-truth box


def test_real_ucf24_duplicated_rows_import_once(real_ucf24, tmp_path):
    from claus.config import RunConfig
    from claus.rounds import AwaitingLabels, run_rounds

    from tests.test_config import fake_trainer

    data = real_ucf24.load()
    run_dir = tmp_path / "run"
    cfg = RunConfig(data=data.spec, strategy="random", oracle="human", init_percent=5,
                    step_percent=10, target_percent=25, videos_per_round=3, passes=2)
    with pytest.raises(AwaitingLabels):
        run_rounds(run_dir, cfg, trainer=fake_trainer(), dataset=data, progress=False)
    p = open_pending(run_dir, data)
    rows, copies = _duplicated(_gt_rows(p), seed=5)
    assert copies > 5 and len({r[0] for r in rows}) == 3
    path = _write_rows(tmp_path / "ucf.csv", rows)
    rep = import_files(p, [path], "ava-csv")
    assert ta.canon(ta.imported(p)) == ta.canon(ta.expected(p))
    assert rep.notes == [f"{path}: {copies} identical duplicate boxes without a track id merged "
                         "(same video, frame, class and coordinates)"]


def test_real_ucf24_dataset_import_merges_duplicate_untracked_rows(real_ucf24, tmp_path):
    W, H = 320, 240  # UCF-101-24's frames (the rendered fixture keeps them)
    assert real_ucf24.frame_size == (H, W)
    videos = {n: {"num_frames": v.num_frames, "width": W, "height": H, "split": v.split}
              for n, v in real_ucf24.videos.items()}
    rows, untracked = [], 0
    for name, v in real_ucf24.videos.items():
        single = len(v.tubes) == 1  # one actor: no track id needed
        for k, (lab, start, boxes) in enumerate(v.tubes):
            for i, b in enumerate(boxes):
                rows.append([name, start + i, b[0] / W, b[1] / H, b[2] / W, b[3] / H,
                             real_ucf24.classes[lab], "" if single else str(k)])
                untracked += single
    assert untracked and len(rows) > untracked  # Fencing: two actors, with track ids
    clean = _write_rows(tmp_path / "clean.csv", rows)
    want = import_ava_csv(clean, videos, time_unit="frame", max_gap=1,
                          classes=real_ucf24.classes)
    rng = random.Random(6)
    extra = [r for r in rows if rng.random() < 0.3]
    copies = sum(r[7] == "" for r in extra)
    assert copies > 10
    dup = _write_rows(tmp_path / "dup.csv", rows + extra)
    with pytest.warns(UserWarning, match=f"{copies} identical duplicate boxes without a track "
                      "id merged"):
        got = import_ava_csv(dup, videos, time_unit="frame", max_gap=1,
                             classes=real_ucf24.classes)
    assert got == want
    # The real tubes come back (to the 2 decimals the format keeps).
    for d in got["videos"]:
        real = real_ucf24.videos[d["name"]].tubes
        assert [(t["label"], t["start"], len(t["boxes"])) for t in d["tubes"]] == \
            [(lab, s, len(b)) for lab, s, b in real]
        for t, (_, _, b) in zip(d["tubes"], real, strict=True):
            np.testing.assert_allclose(t["boxes"], b, atol=0.0051)
    # Identical boxes under two track ids stay two actors.
    name, v = next((n, v) for n, v in real_ucf24.videos.items() if len(v.tubes) == 1)
    twin = [r[:7] + ["twin"] for r in rows if r[0] == name]
    both = _write_rows(tmp_path / "twin.csv", [r[:7] + ["0"] if r[0] == name else r
                                               for r in rows] + twin)
    got = import_ava_csv(both, videos, time_unit="frame", max_gap=1,
                         classes=real_ucf24.classes)
    tubes = next(d["tubes"] for d in got["videos"] if d["name"] == name)
    assert len(tubes) == 2 and tubes[0] == tubes[1]


def test_dataset_importer_does_not_import_torch():
    """Start-up is most of an importer's memory: torch alone is ~220 MiB of RSS. The readers,
    the dataset importer, run configurations and `python -m claus.annotate`'s import path must
    not pull it in (claus.data, claus.eval, claus.training and claus.selection load their torch
    parts lazily)."""
    import subprocess
    import sys

    code = ("import sys, claus.data, claus.data.import_ava, claus.data.ava_csv, "
            "claus.data.custom, claus.config, claus.training, claus.eval; "
            "claus.config.RunConfig(data='synthetic:tiny', strategy='claus').training(); "
            "claus.config.ExperimentSpec(strategies=['random', 'full']); "
            "import claus.annotate, claus.annotation.importer, claus.annotation.formats, "
            "claus.annotation.ava, claus.annotation.labelstudio, claus.annotation.pending; "
            "claus.annotate.build_parser(); "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"



def test_annotate_command_runs_without_torch(run, ds):  # noqa: F811
    """The whole `python -m claus.annotate` import (open the waiting round, read the CSV, write
    the round's new labels) runs without importing torch."""
    import subprocess
    import sys

    path = ta._write_ava(open_pending(run, ds), run / "boxes.csv")
    code = ("import sys; from claus.annotate import main; "
            f"rc = main(['--run', {str(run)!r}, '--file', {str(path)!r}, '--format', 'ava-csv']); "
            "print(rc, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "0 False"
    p = open_pending(run, ds)
    assert ta.canon(ta.imported(p)) == ta.canon(ta.expected(p))
