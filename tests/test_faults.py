"""Faults a user meets with damaged or shared run folders: file modes, interrupted writes,
finished runs resumed without writing, commands pointed at the wrong kind of folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from claus.config import RunConfig
from claus.data import load_dataset
from claus.io import atomic_write_text
from claus.rounds import run_rounds

from tests.test_config import fake_trainer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_dataset("synthetic", preset="tiny", cache_dir=tmp_path_factory.mktemp("syn"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny) -> Path:
    """A finished three-round run (scored strategy, stand-in trainer), made once."""
    run = tmp_path_factory.mktemp("finished") / "run"
    cfg = RunConfig(data="synthetic:tiny", strategy="uncertainty", seed=1, init_percent=5,
                    step_percent=5, target_percent=15, videos_per_round=2, passes=2)
    run_rounds(run, cfg, trainer=fake_trainer(), dataset=tiny, progress=False)
    return run


def _run(tmp_path: Path, finished: Path) -> Path:
    """A copy of the finished run to damage."""
    import shutil

    return Path(shutil.copytree(finished, tmp_path / "run"))


def test_files_take_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.txt", "x")
        assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_finished_run_resumes_without_writing(tmp_path, finished):
    run = _run(tmp_path, finished)

    def snapshot():
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in run.rglob("*")}

    before = snapshot()
    cfg = RunConfig.from_json(__import__("json").loads((run / "config.json").read_text()))
    run_rounds(run, cfg, trainer=fake_trainer(), progress=False)
    assert snapshot() == before


def test_stray_temporaries_are_removed_on_resume(tmp_path, finished):
    run = _run(tmp_path, finished)
    strays = [run / ".metrics.jsonl.x1y2.tmp", run / "round_000" / ".eval.json.abc.tmp"]
    for p in strays:
        p.write_text("half")
    keep = run / "notes.tmp"  # not one of claus's temporaries
    keep.write_text("mine")
    from claus.train import main

    assert main(["--resume", str(run), "--quiet"]) == 0
    assert not any(p.exists() for p in strays) and keep.exists()


def test_evaluate_on_an_active_learning_run_says_what_it_is(tmp_path, finished, capsys):
    from claus.evaluate import main

    run = _run(tmp_path, finished)
    assert main(["--run", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "an active-learning run folder" in err
    assert "metrics.jsonl" in err


def test_non_finite_boxes_are_refused_naming_video_and_frame(tmp_path, tiny):
    import json

    from claus.data import save_custom
    from claus.data.custom import load_custom

    path = tmp_path / "ds.json"
    save_custom(tiny, path)
    doc = json.loads(path.read_text())
    v = doc["videos"][2]
    v["tubes"][0]["boxes"][1][2] = float("nan")
    path.write_text(json.dumps(doc))  # Python writes NaN, as other tools do
    frame = v["tubes"][0]["start"] + 1
    with pytest.raises(ValueError, match=rf"{v['name']}.*frame {frame} is not finite"):
        load_custom(path)


def test_degenerate_boxes_are_dropped_counted_and_not_charged(tmp_path, tiny):
    """A box wholly outside the frame (or of zero area) is no ground truth: the track is split
    around it, the file's warning counts it, budgets do not charge it; a dataset left with no
    usable box is refused."""
    import json

    from claus.data import save_custom
    from claus.data.custom import load_custom

    path = tmp_path / "ds.json"
    save_custom(tiny, path)
    doc = json.loads(path.read_text())
    v = next(x for x in doc["videos"] if x["split"] == "train" and x["tubes"]
             and len(x["tubes"][0]["boxes"]) >= 5)
    t = v["tubes"][0]
    n = len(t["boxes"])
    w = v["width"]
    t["boxes"][2] = [w + 5.0, 1.0, w + 9.0, 4.0]  # wholly right of the frame
    t["boxes"][3] = [3.0, 3.0, 3.0, 9.0]          # zero width
    path.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="2 boxes had no area inside the frame and were dropped"):
        ds = load_custom(path)
    got = ds.video(v["name"])
    starts = [(x.start, x.end) for x in got.tubes[:2]]
    assert starts == [(t["start"], t["start"] + 2), (t["start"] + 4, t["start"] + n)]
    assert ds.num_boxes("train") == tiny.num_boxes("train") - 2
    assert int(got.boxes_per_frame()[t["start"] + 2]) == 0  # no actor: costs 1 frame, no box
    for x in doc["videos"]:
        for tube in x["tubes"]:
            tube["boxes"] = [[0.0, 0.0, 0.0, 0.0]] * len(tube["boxes"])
    path.write_text(json.dumps(doc))
    from claus.data import load_dataset

    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no usable ground-truth box"):
        load_dataset("custom", path)


@pytest.mark.parametrize("name, damage, says", [
    ("round_000/selection.json", b'{"frames": {"a": [1, 2]\n', "changed since round"),
    ("round_000/labels.json", None, "missing from committed round"),
    ("round_000/model.pt", b"garbage", "changed since round"),
    ("round_001.partial/labels.json", b"\xff\xfe\x00garbage", "not UTF-8"),
    ("round_001.partial/labels.json", b'{"format": "claus.labels",', "not valid JSON (line 1"),
    ("round_001.partial/scores.pt", b"garbage", "unreadable pool scores"),
])
def test_damaged_run_files_are_named(tmp_path, finished, capsys, name, damage, says):
    """A damaged or missing file of a run folder: one line naming the file, never a run
    called complete over a damaged round."""
    from claus.train import main

    run = _run(tmp_path, finished)
    # Round 1 is in progress again, so resuming reads its files too.
    (run / "round_001").rename(run / "round_001.partial")
    (run / "round_001.partial" / "round.json").unlink()
    if damage is None:
        (run / name).unlink()
    else:
        (run / name).write_bytes(damage)
    assert main(["--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / name}") and err.count("\n") == 1, err
    assert says in err


def test_damaged_metrics_file_is_rebuilt(tmp_path, finished):
    from claus.train import main

    run = _run(tmp_path, finished)
    good = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text('{"round": 0}\n{"round": 1, \n')
    assert main(["--resume", str(run), "--quiet"]) == 0
    assert (run / "metrics.jsonl").read_text() == good


def test_non_finite_boxes_in_a_ucf_pickle_are_refused(tmp_path):
    import pickle

    import numpy as np
    from claus.data import load_ucf24

    root = tmp_path / "ucf"
    root.mkdir()
    boxes = np.array([[1, 2, 3, 4], [1, 2, np.nan, 4], [1, 2, 3, 4]], np.float32)
    data = {"db": {"Jump/v_Jump_g01_c01": {"label": 0, "numf": 6, "annotations": [
        {"label": 0, "sf": 1, "ef": 4, "boxes": boxes}]}},
        "trainvideos": ["Jump/v_Jump_g01_c01"], "classes": ["Jump"]}
    (root / "pyannot_with_class_names.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ValueError, match=r"pyannot_with_class_names.pkl: video "
                       r"'Jump/v_Jump_g01_c01' tube 0: the box of frame 2 is not finite"):
        load_ucf24(root)
