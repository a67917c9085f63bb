"""A real Label Studio server, end to end: optional and slow (a minute or two, most of it the
server's first start), skipped unless Label Studio is installed.

Label Studio is a large install (Django and friends) and is not a dependency of claus: give it
a virtual environment of its own and point the test at its executable:

    python -m venv /tmp/lsvenv && /tmp/lsvenv/bin/pip install label-studio
    export CLAUS_LABEL_STUDIO=/tmp/lsvenv/bin/label-studio
    python -m pytest tests/test_labelstudio_server.py

(`label-studio` on PATH, or importable in this environment, works without the variable.)

What it does, as a user would through the REST API: start Label Studio on 127.0.0.1 with
local-files serving (the settings the export README gives), run claus with `--oracle human`
on non-square (101 × 45) videos stored as frames, export the round with `claus.select
--format labelstudio --encode`, create the project from claus's `config.xml`, add the local
storage of the encoded videos, import `tasks.json`, check the player's byte-range request,
post annotations in Label Studio's own format (a task's predictions accepted as they are,
interpolated tracks with keyframes only where each actor starts and ends, a superseded
annotation), export JSON, import it with `claus.annotate`, and resume the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from claus.annotate import main as annotate_main
from claus.annotation import open_pending
from claus.data import LabelState
from claus.select import main as select_main
from claus.train import main as train_main

from tests.realdata import render_custom

W, H = 101, 45
TOKEN = "c1a05c1a05c1a05c1a05c1a05c1a05c1a05c1a05"


def _label_studio() -> list[str] | None:
    exe = os.environ.get("CLAUS_LABEL_STUDIO") or shutil.which("label-studio")
    if exe:
        return [exe]
    if importlib.util.find_spec("label_studio") is not None:
        return [sys.executable, "-m", "label_studio.server"]
    return None


pytestmark = pytest.mark.skipif(_label_studio() is None, reason="Label Studio is not installed "
                                "(set CLAUS_LABEL_STUDIO to its executable)")


class Api:
    """Label Studio's REST API with the legacy token of the user the server was started with."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body=None, headers=None, raw: bool = False):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Token {TOKEN}", "Content-Type": "application/json",
            **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                payload = r.read()
                if raw:
                    return r.status, dict(r.headers), payload
                return json.loads(payload or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read()[:2000]!r}") from None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(Api, document root): a Label Studio server serving local files under the root."""
    root = tmp_path_factory.mktemp("ls-root")
    data = tmp_path_factory.mktemp("ls-data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data),
           "LOCAL_FILES_SERVING_ENABLED": "true", "LOCAL_FILES_DOCUMENT_ROOT": str(root),
           "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true"}
    log = open(data / "server.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [*_label_studio(), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port",
         str(port), "--data-dir", str(data), "--username", "claus@example.org", "--password",
         "claus-test-password", "--user-token", TOKEN, "--enable-legacy-api-token"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Label Studio did not start: "
                            + (data / "server.log").read_text(errors="replace")[-3000:])
            time.sleep(2)
        yield Api(base), root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _keys(v, t, size, fps) -> list[dict]:
    """An annotator's track: keyframes where the actor starts (on) and ends (off)."""
    s, e = t.start, t.start + len(t.boxes) - 1
    out = []
    for f, on in ([(s, True), (e, False)] if e > s else [(s, False)]):
        x1, y1, x2, y2 = (float(x) for x in t.box(f))
        out.append({"frame": f + 1, "enabled": on, "rotation": 0, "x": 100 * x1 / size[0],
                    "y": 100 * y1 / size[1], "width": 100 * (x2 - x1) / size[0],
                    "height": 100 * (y2 - y1) / size[1], "time": (f + 1) / fps})
    return out


def test_label_studio_round_trip(server, tmp_path, capsys, monkeypatch):
    api, root = server
    # The shell Label Studio runs in: claus.select takes the document root from it.
    monkeypatch.setenv("LOCAL_FILES_DOCUMENT_ROOT", str(root))
    rendered = render_custom(tmp_path / "data", size=(H, W))
    ds = rendered.load()
    out = root / "runs"
    assert train_main(["--dataset", "custom", "--root", str(rendered.root), "--strategy",
                       "random", "--oracle", "human", "--init", "5", "--step", "10", "--target",
                       "25", "--videos-per-round", "2", "--epochs", "1", "--batch-size", "4",
                       "--min-clips-per-epoch", "0", "--T", "4", "--stride", "1", "--size", "32",
                       "--passes", "2", "--device", "cpu", "--out", str(out), "--quiet",
                       "--no-pictures"]) == 0
    run = out / "random" / "seed0"
    pid = None
    for rnd in (0, 1):  # two human rounds, one Label Studio project holding both
        pid = _label_round(api, root, run, ds, rnd, pid, tmp_path, capsys)
        assert train_main(["--resume", str(run), "--quiet", "--no-pictures"]) == 0
        capsys.readouterr()
    # Round 0 and 1 took people's labels, round 2 is the last (25 %).
    rounds = [json.loads(x)["round"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rounds == [0, 1, 2]


def _label_round(api: Api, root, run, ds, rnd: int, pid, tmp_path, capsys):
    """Export round `rnd` to Label Studio, label it there, bring the labels back (checked
    against the boxes Label Studio shows); returns the project id."""
    # Threshold 0: the model's tube covers every frame, so every task has a prediction track.
    assert select_main(["--run", str(run), "--format", "labelstudio", "--encode",
                        "--fg-threshold", "0"]) == 0
    capsys.readouterr()
    pending = open_pending(run)
    assert pending.round == rnd
    export = pending.folder / "export" / "labelstudio"
    tasks = json.loads((export / "tasks.json").read_text())
    readme = (export / "README.md").read_text()
    assert f"LOCAL_FILES_DOCUMENT_ROOT={root.resolve()}\n" in readme
    if pid is None:
        project = api.call("POST", "/api/projects", {
            "title": "claus rounds", "label_config": (export / "config.xml").read_text()})
        pid = project["id"]
        api.call("POST", "/api/storages/localfiles", {
            "project": pid, "path": str((run / "videos").resolve()), "title": "claus videos",
            "use_blob_urls": False})
    api.call("POST", f"/api/projects/{pid}/import", tasks)
    # The player's request: a byte range of the video, through Label Studio.
    url = tasks[0]["data"]["video"]
    status, head, body = api.call("GET", url, headers={"Range": "bytes=0-99"}, raw=True)
    name = tasks[0]["data"]["claus_video"]
    assert status == 206 and body == (run / "videos" / f"{name}.mp4").read_bytes()[:100]

    stored = [t for t in api.call("GET", f"/api/projects/{pid}/export?exportType=JSON"
                                  "&download_all_tasks=true")
              if t["data"]["claus_round"] == rnd]
    assert len(stored) == len(tasks)
    want = {}
    for k, task in enumerate(stored):
        v = ds[task["data"]["claus_video"]]
        size, fps = task["data"]["claus_size"], task["data"]["fps"]
        assert size == [W + 1, H + 1]
        frames = [f - 1 for f in task["data"]["frames"]]
        if k == 0:
            # Accept the model's prediction as it is (the export lists predictions by id).
            (pred,) = api.call("GET", f"/api/predictions/?task={task['id']}")
            assert pred["result"] and task["predictions"] in ([pred["id"]], [pred])
            body = {"result": pred["result"], "parent_prediction": pred["id"]}
            for res in pred["result"]:
                for item in res["value"]["sequence"]:
                    b = (item["x"] * size[0] / 100, item["y"] * size[1] / 100,
                         (item["x"] + item["width"]) * size[0] / 100,
                         (item["y"] + item["height"]) * size[1] / 100)
                    want.setdefault((v.name, item["frame"] - 1), []).append(
                        np.clip(b, 0, [W, H, W, H]))
        else:
            result = [{"id": f"t{i}", "from_name": "box", "to_name": "video",
                       "type": "videorectangle", "origin": "manual",
                       "value": {"framesCount": v.num_frames, "duration": v.num_frames / fps,
                                 "labels": [ds.classes[t.label]],
                                 "sequence": _keys(v, t, size, fps)}}
                      for i, t in enumerate(v.tubes)]
            # A first try, superseded by the one submitted after it.
            api.call("POST", f"/api/tasks/{task['id']}/annotations/",
                     {"result": [], "was_cancelled": False})
            time.sleep(1.1)
            body = {"result": result}
            for t in v.tubes:  # what Label Studio shows: linear from start to end
                s, e = t.start, t.start + len(t.boxes) - 1
                for f in frames:
                    if s <= f <= e:
                        r = (f - s) / max(e - s, 1)
                        b0, b1 = np.asarray(t.box(s), float), np.asarray(t.box(e), float)
                        want.setdefault((v.name, f), []).append(b0 + (b1 - b0) * r)
        api.call("POST", f"/api/tasks/{task['id']}/annotations/",
                 {**body, "was_cancelled": False})
    done = api.call("GET", f"/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true")
    path = tmp_path / f"export{rnd}.json"
    path.write_text(json.dumps(done))

    assert annotate_main(["--run", str(run), "--file", str(path), "--format",
                          "labelstudio"]) == 0
    text = capsys.readouterr().out
    assert "2 submitted annotations" in text and "used the latest" in text
    if rnd:
        assert "belongs to round 0, ignored" in text
    got = LabelState.load(pending.folder / "next_labels.json", ds)
    for r in pending.requests:
        for f in r.frames:
            boxes = sorted(tuple(b.box) for b in got.boxes(r.video, f))
            exp = sorted(tuple(float(x) for x in b) for b in want.get((r.video, f), []))
            assert np.allclose(np.reshape(boxes, (-1, 4)), np.reshape(exp, (-1, 4)),
                               atol=1e-3), (r.video, f, boxes, exp)
            assert got.is_labelled(r.video, f)
    if os.environ.get("CLAUS_LS_FIXTURES"):  # keep the real export for tests without a server
        version = api.call("GET", "/api/version").get("release")
        _save_fixture(Path(os.environ["CLAUS_LS_FIXTURES"]), rnd, done, pending, want, version)
    return pid


def _save_fixture(folder: Path, rnd: int, export: list, pending, want: dict,
                  version: str | None) -> None:
    """tests/fixtures/labelstudio/round<r>.json: the server's own export of round r, what the
    round requested, and the boxes Label Studio shows on those frames (test_labelstudio_export
    imports it without a server)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"label_studio": version, "round": rnd,
           "requested": {v: list(map(int, f)) for v, f in pending.requested().items()},
           "want": [[v, int(f), [[float(x) for x in b] for b in bs]]
                    for (v, f), bs in sorted(want.items())],
           "export": export}
    (folder / f"round{rnd}.json").write_text(json.dumps(doc, indent=1) + "\n")
