"""Importer benchmark: a 54 MB AVA-style CSV and a 50 MB Label Studio export, through the CLIs.

    python bench/bench_import.py [--ava-mb 54] [--ls-mb 50] [--seed 0] [--keep DIR]
                                 [--cases ava-dataset,ava-annotate,labelstudio]

Generated files (deterministic given --seed), in a temporary folder (or --keep DIR):

* `boxes_seconds.csv`: AVA layout (`video, time, x1, y1, x2, y2, label, track`, no header),
  rows sorted by video and time as AVA's releases are. Thousands of videos of 60-400 frames
  at 25 fps (320x240), 1-3 actor tracks each with a box on every frame (timestamps
  f / 25 s, coordinates normalized to 3 decimals), 24 class names; about one track in six has a
  second action over part of its span (AVA's multi-label rows: same box, another label).
* `boxes_frames.csv`: the same rows with 0-based frame numbers (the annotation importer's
  layout).
* `pool.json` + `run/`: a claus dataset of those videos (one box each: almost nothing to open)
  and an interactive run waiting at round 9, which requested 5 frames of 40% of the videos. The
  CSV's boxes on other frames are "extra" (reported, ignored).
* `export.json`: a Label Studio JSON export shaped like the real server's
  (tests/fixtures/labelstudio: server fields, annotation objects, `predictions` as ids): the
  round's tasks (one videorectangle region per track, a keyframe on each requested frame; one
  task in five annotated twice, one in fifty never submitted) plus the tasks of the rounds
  before it that one project holds, each noted "belongs to round r, ignored".

Cases (each a fresh `python -m ...` process; wall time, CPU time and peak RSS from
`os.wait4`; CPU time is the steadier figure on a shared machine):

* ava-dataset: `python -m claus.data.import_ava boxes_seconds.csv --videos videos.json`;
* ava-annotate: `python -m claus.annotate --run run --file boxes_frames.csv --format ava-csv`;
* labelstudio: `python -m claus.annotate --run run --file export.json --format labelstudio
  --allow-missing`.

The `start-up` rows give what importing each CLI's module alone costs (`claus.data` imports
torch: about 230 MiB and 2 s here), so an import's own share is the difference. The printed
lines of each CLI are counted. `--pythonpath DIR` runs the CLIs on another checkout's `python/`
folder (e.g. a `git worktree` of an earlier commit), for before/after figures from one script.

Each case is appended as a row to bench/results/import.csv (bench/common.py; seconds, one run;
peak memory = the process's peak RSS; CPU time, exit status and printed lines in `extra`; the
implementation is "claus", or "pythonpath DIR" for another checkout); `--no-record` skips that.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Recorder, add_record_args, summarize  # noqa: E402

CLASSES = [f"action_{k:02d}" for k in range(24)]
FPS = 25
W, H = 320, 240
PENDING_ROUND = 9


# ---------------------------------------------------------------------------- generators
def _track_rows(rng: np.random.Generator, n: int) -> tuple[int, np.ndarray]:
    """(start, (len, 4) float64 normalized boxes) of one actor: a box drifting in the frame."""
    length = int(rng.integers(min(20, n), n + 1))
    start = int(rng.integers(0, n - length + 1))
    w, h = rng.uniform(0.1, 0.4), rng.uniform(0.3, 0.8)
    centre = rng.uniform([w / 2, h / 2], [1 - w / 2, 1 - h / 2])
    drift = rng.normal(0, 0.002, size=(length, 2)).cumsum(0)
    c = np.clip(centre + drift, [w / 2, h / 2], [1 - w / 2, 1 - h / 2])
    boxes = np.stack([c[:, 0] - w / 2, c[:, 1] - h / 2, c[:, 0] + w / 2, c[:, 1] + h / 2], 1)
    return start, np.clip(boxes, 0.0, 1.0)


def _video_rows(rng: np.random.Generator, name: str, n: int) -> list[tuple[int, str, str]]:
    """[(frame, "x1,y1,x2,y2,label,track", video)] of one video, one row per box."""
    rows = []
    for k in range(int(rng.integers(1, 4))):
        start, boxes = _track_rows(rng, n)
        labels = [int(rng.integers(len(CLASSES)))]
        second = None
        if rng.random() < 1 / 6:  # a second action of the same actor over part of the track
            labels.append(int((labels[0] + 1 + rng.integers(len(CLASSES) - 1)) % len(CLASSES)))
            a = int(rng.integers(0, len(boxes)))
            second = (a, int(rng.integers(a + 1, len(boxes) + 1)))
        for i, b in enumerate(boxes):
            coords = f"{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f}"
            rows.append((start + i, f"{coords},{CLASSES[labels[0]]},{k}", name))
            if second is not None and second[0] <= i < second[1]:
                rows.append((start + i, f"{coords},{CLASSES[labels[1]]},{k}", name))
    rows.sort(key=lambda r: r[0])
    return rows


def write_ava(folder: Path, target_bytes: int, seed: int) -> dict[str, dict]:
    """Write boxes_seconds.csv and boxes_frames.csv (see the module docstring) of at least
    `target_bytes` each; returns the videos table {name: {num_frames, width, height, fps,
    split}} of `python -m claus.data.import_ava --videos`."""
    rng = np.random.default_rng(seed)
    videos: dict[str, dict] = {}
    size = 0
    with open(folder / "boxes_seconds.csv", "w") as fs, open(folder / "boxes_frames.csv",
                                                              "w") as ff:
        while size < target_bytes:
            i = len(videos)
            name = f"cam{i % 37:02d}/clip_{i:05d}"
            n = int(rng.integers(60, 401))
            videos[name] = {"num_frames": n, "width": W, "height": H, "fps": FPS,
                            "split": "test" if i % 5 == 4 else "train"}
            rows = _video_rows(rng, name, n)
            text = "".join(f"{v},{f / FPS:.2f},{rest}\n" for f, rest, v in rows)
            fs.write(text)
            ff.write("".join(f"{v},{f},{rest}\n" for f, rest, v in rows))
            size += len(text)
    return videos


def write_run(folder: Path, videos: dict[str, dict], seed: int) -> dict[str, list[int]]:
    """pool.json (the videos, every one in the training pool, no tubes) and run/ (an
    interactive run waiting at round PENDING_ROUND); returns the requested frames."""
    from claus.config import DatasetSpec, RunConfig
    from claus.data import LabelState, load_custom
    from claus.io import atomic_write_json
    from claus.selection.strategies import Selection

    # One ground-truth box per video (frame 0) makes it an annotated pool at almost no cost to
    # open; label -1 keeps the importer's class-mismatch note out of the figures.
    tube = [{"label": 0, "start": 0, "boxes": [[10.0, 10.0, 50.0, 90.0]]}]
    pool = {"format": "claus.dataset", "version": 1, "name": "bench-pool", "classes": CLASSES,
            "videos": [{"name": k, "label": -1, "split": "train", "num_frames": v["num_frames"],
                        "width": v["width"], "height": v["height"], "tubes": tube}
                       for k, v in videos.items()]}
    atomic_write_json(folder / "pool.json", pool, indent=None)
    rng = np.random.default_rng(seed + 1)
    names = sorted(videos)
    chosen = sorted(rng.choice(len(names), size=int(0.4 * len(names)), replace=False))
    requested = {names[i]: sorted(int(f) for f in rng.choice(videos[names[i]]["num_frames"],
                                                             5, replace=False))
                 for i in chosen}
    run = folder / "run"
    cfg = RunConfig(data=DatasetSpec(name="custom", root=str(folder / "pool.json")),
                    strategy="random", oracle="human")
    atomic_write_json(run / "config.json", cfg.to_json())
    part = run / f"round_{PENDING_ROUND:03d}.partial"
    ds = load_custom(folder / "pool.json")
    LabelState.empty(ds).save(part / "labels.json")
    atomic_write_json(part / "selection.json", Selection(frames=requested).to_json())
    return requested


def _server_fields(tid: int, when: str) -> dict:
    """What Label Studio 1.23 adds to every exported task (tests/fixtures/labelstudio)."""
    return {"meta": {}, "created_at": when, "updated_at": when, "allow_skip": True,
            "inner_id": tid, "cancelled_annotations": 0, "total_predictions": 1,
            "comment_count": 0, "unresolved_comment_count": 0, "last_comment_updated_at": None,
            "project": 1, "updated_by": 1, "comment_authors": []}


def _annotation(aid: int, tid: int, result: list[dict], when: str) -> dict:
    return {"id": aid, "completed_by": 1 + aid % 3, "result": result, "was_cancelled": False,
            "ground_truth": False, "created_at": when, "updated_at": when,
            "draft_created_at": None, "lead_time": 12.5, "prediction": {},
            "result_count": len(result), "unique_id": f"{aid:08x}-bench", "import_id": None,
            "last_action": None, "bulk_created": False, "task": tid, "project": 1,
            "updated_by": 1, "parent_prediction": None, "parent_annotation": None,
            "last_created_by": None}


def _region(rng: np.random.Generator, k: int, frames: list[int], n: int) -> dict:
    """A videorectangle track with a keyframe on each of `frames` (1-based), the last one
    disabled (it ends the track)."""
    x, y = rng.uniform(0, 60, 2)
    seq = [{"frame": f, "enabled": i < len(frames) - 1, "rotation": 0,
            "x": float(x + i), "y": float(y), "width": float(rng.uniform(10, 35)),
            "height": float(rng.uniform(20, 35)), "time": f / FPS}
           for i, f in enumerate(frames)]
    return {"id": f"r{k}", "from_name": "box", "to_name": "video", "type": "videorectangle",
            "origin": "manual", "value": {"framesCount": n, "duration": n / FPS,
                                          "labels": [CLASSES[int(rng.integers(len(CLASSES)))]],
                                          "sequence": seq}}


def _task(rng: np.random.Generator, tid: int, name: str, info: dict, rnd: int,
          frames: list[int], annotations: int) -> dict:
    """One exported task of video `name` in round `rnd` asking for `frames` (0-based)."""
    n = info["num_frames"]
    ls = [f + 1 for f in frames]
    when = f"2026-0{1 + rnd % 9}-1{tid % 10}T10:{tid % 60:02d}:00.000000Z"
    anns = [_annotation(2 * tid + a, tid, [_region(rng, k, ls, n) for k in
                                           range(int(rng.integers(1, 3)))], when)
            for a in range(annotations)]
    return {"id": tid, "annotations": anns, "drafts": [], "predictions": [tid],
            "data": {"video": f"/data/local-files/?d=videos/{name}.mp4", "claus_video": name,
                     "claus_round": rnd, "claus_size": [info["width"], info["height"]],
                     "frames": ls, "frames_text": ", ".join(map(str, ls)), "fps": float(FPS)},
            **_server_fields(tid, when), "total_annotations": annotations}


def write_labelstudio(path: Path, videos: dict[str, dict], requested: dict[str, list[int]],
                      target_bytes: int, seed: int) -> dict[str, int]:
    """export.json (see the module docstring) of at least `target_bytes`; returns the count
    of tasks per kind."""
    rng = np.random.default_rng(seed + 2)
    names = sorted(videos)
    counts = {"this round": 0, "annotated twice": 0, "not submitted": 0, "other rounds": 0}
    size, tid = 2, 0
    with open(path, "w") as fh:
        fh.write("[")
        for name, frames in requested.items():
            tid += 1
            k = 0 if tid % 50 == 0 else 2 if tid % 5 == 0 else 1
            counts["this round"] += 1
            counts["annotated twice"] += k == 2
            counts["not submitted"] += k == 0
            text = json.dumps(_task(rng, tid, name, videos[name], PENDING_ROUND, frames, k))
            fh.write(("," if tid > 1 else "") + text)
            size += len(text) + 1
        while size < target_bytes:
            tid += 1
            name = names[int(rng.integers(len(names)))]
            n = videos[name]["num_frames"]
            frames = sorted(int(f) for f in rng.choice(n, 3, replace=False))
            text = json.dumps(_task(rng, tid, name, videos[name], int(rng.integers(PENDING_ROUND)),
                                    frames, 1))
            counts["other rounds"] += 1
            fh.write("," + text)
            size += len(text) + 1
        fh.write("]")
    return counts


# ---------------------------------------------------------------------------- measuring
def run_cli(args: list[str], env: dict[str, str], out: Path) -> dict:
    """Run `python ARGS` with stdout+stderr to `out`: wall seconds, peak RSS (MiB) of the
    process (`os.wait4`'s ru_maxrss, KiB on Linux), exit status, printed lines."""
    t0 = time.perf_counter()
    with open(out, "w") as fh:
        proc = subprocess.Popen([sys.executable, *args], stdout=fh, stderr=subprocess.STDOUT,
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.read_text(errors="replace")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_mib": round(usage.ru_maxrss / 1024, 1),
            "rc": proc.returncode, "lines": len(text.splitlines()),
            "tail": text.splitlines()[-3:]}


def cases(tmp: Path, which: list[str]) -> dict[str, list[str]]:
    run = str(tmp / "run")
    all_cases = {
        "start-up python": ["-c", "pass"],
        "start-up import_ava": ["-c", "import claus.data.import_ava"],
        "start-up annotate": ["-c", "import claus.annotate"],
        "ava-dataset": ["-m", "claus.data.import_ava", str(tmp / "boxes_seconds.csv"),
                        "--videos", str(tmp / "videos.json"), "--out", str(tmp / "ds.json")],
        "ava-annotate": ["-m", "claus.annotate", "--run", run, "--file",
                         str(tmp / "boxes_frames.csv"), "--format", "ava-csv"],
        "labelstudio": ["-m", "claus.annotate", "--run", run, "--file",
                        str(tmp / "export.json"), "--format", "labelstudio",
                        "--allow-missing"],
    }
    return {k: v for k, v in all_cases.items() if k.startswith("start-up") or k in which}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ava-mb", type=float, default=54.0, help="AVA CSV size in MB (1e6 bytes)")
    ap.add_argument("--ls-mb", type=float, default=50.0, help="Label Studio export size in MB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="write the files here and keep them (default: a temp dir)")
    ap.add_argument("--cases", default="ava-dataset,ava-annotate,labelstudio")
    ap.add_argument("--pythonpath", help="a checkout's python/ folder to run the CLIs on")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--generate-only", metavar="DIR", help=argparse.SUPPRESS)
    add_record_args(ap)
    return ap.parse_args(argv)


def generate(a: argparse.Namespace, tmp: Path) -> dict:
    """Write the bench files into `tmp`; what was written (for the report)."""
    t0 = time.perf_counter()
    videos = write_ava(tmp, int(a.ava_mb * 1e6), a.seed)
    (tmp / "videos.json").write_text(json.dumps(videos))
    requested = write_run(tmp, videos, a.seed)
    counts = write_labelstudio(tmp / "export.json", videos, requested, int(a.ls_mb * 1e6), a.seed)
    rows = sum(1 for _ in open(tmp / "boxes_seconds.csv"))
    return {"seconds": round(time.perf_counter() - t0, 1), "rows": rows, "videos": len(videos),
            "tasks": counts, "requested_frames": sum(map(len, requested.values())),
            "requested_videos": len(requested)}


def _generate_in_child(a: argparse.Namespace, tmp: Path, env: dict[str, str]) -> dict:
    """Generate the files in a child process. A process's peak RSS includes the memory of the
    process it was forked from (Linux carries `maxrss` over fork and exec), so the measuring
    process must stay small: it never holds the generated data."""
    argv = [sys.executable, __file__, "--generate-only", str(tmp), "--ava-mb", str(a.ava_mb),
            "--ls-mb", str(a.ls_mb), "--seed", str(a.seed)]
    if a.pythonpath:
        argv += ["--pythonpath", a.pythonpath]
    out = subprocess.run(argv, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"generating the bench files failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env(a: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if a.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(a.pythonpath).resolve())] + env.get("PYTHONPATH", "").split(os.pathsep))
    return env


def record(a: argparse.Namespace, results: dict[str, dict]) -> str:
    """One row per case (no baseline: the start-up rows are the reference points); the summary.
    The case names the generated file's size, which sets the work."""
    rec = Recorder.from_args("import", a)
    size = {"ava-dataset": a.ava_mb, "ava-annotate": a.ava_mb, "labelstudio": a.ls_mb}
    impl = f"pythonpath {a.pythonpath}" if a.pythonpath else "claus"
    for name, r in results.items():
        case = f"{name} {size[name]:g} MB" if name in size else name
        with rec.case(case, "cpu") as c:
            c.add(impl, {**summarize([r["wall_s"]]), "peak_mib": r["peak_mib"],
                         "mem": "rss-lifetime"}, unit="s", cpu_s=r["cpu_s"], rc=r["rc"],
                  lines=r["lines"])
    return rec.summary()


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.generate_only:
        if a.pythonpath:  # the run folder is written by the code under test too
            sys.path.insert(0, str(Path(a.pythonpath).resolve()))
        Path(a.generate_only).mkdir(parents=True, exist_ok=True)
        print(json.dumps(generate(a, Path(a.generate_only))))
        return 0
    tmp = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="claus-bench-import-"))
    tmp.mkdir(parents=True, exist_ok=True)
    env = _env(a)
    try:
        info = _generate_in_child(a, tmp, env)
        print(f"generated in {info['seconds']:.1f} s: "
              f"boxes_seconds.csv {os.path.getsize(tmp / 'boxes_seconds.csv') / 1e6:.1f} MB, "
              f"{info['rows']:,} rows, {info['videos']:,} videos; export.json "
              f"{os.path.getsize(tmp / 'export.json') / 1e6:.1f} MB, tasks: {info['tasks']}; "
              f"requested: {info['requested_frames']:,} frames of "
              f"{info['requested_videos']:,} videos")
        results = {}
        for name, args in cases(tmp, a.cases.split(",")).items():
            r = run_cli(args, env, tmp / f"{name}.out")
            results[name] = r
            print(f"{name:20s} wall {r['wall_s']:6.2f} s  CPU {r['cpu_s']:6.2f} s  peak RSS "
                  f"{r['peak_mib']:7.1f} MiB  exit {r['rc']}  {r['lines']} lines printed")
        if a.json:
            Path(a.json).write_text(json.dumps({**info, "results": results}, indent=1))
        print(record(a, results))
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
