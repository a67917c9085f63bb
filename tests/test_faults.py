"""Faults a user meets with damaged or shared run folders: file modes, interrupted writes,
finished runs resumed without writing, commands pointed at the wrong kind of folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
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


# ---------------------------------------------------------------------------- unreadable videos
# A missing or truncated frame in one video: left out of the stage that reads it, named in a
# warning and in the run's files; a run stops only past --max-bad-share (one line, exit 2).
# The data are UCF-101-24 frame folders rendered from the real annotations (tests/realdata).

#: The smallest run shapes the tiny detector trains at (as tests/test_real_rounds.py).
SMALL_TRAIN = ["--epochs", "2", "--batch-size", "4", "--min-clips-per-epoch", "0", "--T", "4",
               "--stride", "1", "--size", "32", "--device", "cpu", "--quiet", "--no-pictures"]


def _damage(data, tmp_path: Path):
    """A copy of a rendered UCF-101-24 folder (the fixture is shared and read-only) and a
    `cut(video, frame, how)` that truncates ("truncate") or deletes ("delete") one JPEG."""
    import shutil

    from tests.realdata import Rendered

    root = Path(shutil.copytree(data.root, tmp_path / "ucf"))
    copy = Rendered(data.dataset, root, data.classes, data.videos, data.frame_size)

    def cut(video: str, frame: int, how: str = "truncate") -> Path:
        path = root / "rgb-images" / video / f"{frame + 1:05d}.jpg"
        if how == "delete":
            path.unlink()
        else:
            path.write_bytes(path.read_bytes()[:300])  # the JPEG header, then nothing
        return path

    return copy, cut


def _cut_every(cut, video: str, num_frames: int, step: int = 3) -> list[Path]:
    """Damage every `step`-th frame, so that any clip of 4 consecutive frames reads one."""
    return [cut(video, f) for f in range(0, num_frames, step)]


def _messages(rec) -> str:
    return "\n".join(str(w.message) for w in rec)


def test_ledger_counts_names_and_stops_past_its_share():
    import warnings

    from claus.data.faults import BadVideos, TooManyBadVideos

    bad = BadVideos("/data/ucf", 20, 0.05)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert bad.add("a/v1", "train", "frame 3: image /x/00004.jpg is missing", "/x/00004.jpg")
        assert not bad.add("a/v1", "score", "again")  # known: recorded for the stage, no warning
    assert len(rec) == 1
    assert str(rec[0].message) == ("/data/ucf: video 'a/v1' left out of training: frame 3: "
                                   "image /x/00004.jpg is missing")
    assert set(bad.to_json()) == {"train", "score"} and len(bad) == 1
    # 1 of 20 is 5%, not more than 5%: goes on; 2 of 20 is more.
    with pytest.warns(UserWarning), pytest.raises(TooManyBadVideos) as err:
        bad.add("a/v2", "eval", ValueError("bad\nline"))
    assert str(err.value) == (
        "/data/ucf: 2 of 20 videos could not be read (> 5%), first: a/v1 (frame 3: image "
        "/x/00004.jpg is missing); fix or remove them, or raise --max-bad-share")
    strict = BadVideos("s", 1000, 0.0)
    with pytest.warns(UserWarning), pytest.raises(TooManyBadVideos, match="1 of 1000"):
        strict.add("v", "export", "x")
    lax = BadVideos("s", 3, None)
    lax.add_json("prepare", {n: {"file": None, "reason": "r"} for n in "abc"})
    assert len(lax) == 3  # no limit, and no warning for what a file recorded


def test_training_and_evaluation_leave_unreadable_videos_out(real_ucf24, tmp_path, capsys):
    """`--labels full`: a training video with truncated JPEGs and a test video with a missing
    one. The run completes, names both files, leaves the training video out of later epochs
    and the test video out of the metrics; at the default 5% it stops with one line."""
    import json

    from claus.train import main

    data, cut = _damage(real_ucf24, tmp_path)
    a = data.names("train")[0]
    b = data.names("test")[1]
    cut_a = _cut_every(cut, a, data.videos[a].num_frames)
    cut_b = cut(b, 6, "delete")
    run = tmp_path / "run"
    argv = [*data.cli_args(), "--labels", "full", *SMALL_TRAIN]
    with pytest.warns(UserWarning) as rec:
        assert main([*argv, "--run", str(run), "--max-bad-share", "0.25"]) == 0
    said = _messages(rec)
    assert f"video '{a}' left out of training" in said
    assert f"video '{b}' left out of evaluation" in said and str(cut_b) in said
    res = json.loads((run / "results.json").read_text())
    assert res["videos"] == data.num_test - 1
    assert set(res["skipped"]) == {"train", "eval"}
    assert list(res["skipped"]["train"]) == [a] and list(res["skipped"]["eval"]) == [b]
    assert res["skipped"]["train"][a]["file"] in {str(p) for p in cut_a}
    assert res["skipped"]["eval"][b] == {
        "file": str(cut_b), "reason": f"frame 6: image {cut_b} is missing"}
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert list(records[0]["unreadable"]) == [a]
    assert "unreadable" not in records[1]  # found once, then left out
    capsys.readouterr()
    with pytest.warns(UserWarning):
        assert main([*argv, "--run", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {data.root}: 1 of {len(data.videos)} videos could not be "
                          f"read (> 5%), first: {a} (frame ")
    assert err.endswith("; fix or remove them, or raise --max-bad-share\n")


class ColourDetector(torch.nn.Module):
    """Sees the rendered actors: foreground where a pixel has a class colour
    (`tests.realdata.CLASS_COLOURS`), the class whose colour covers most pixels; with `blind`
    it sees no foreground anywhere. A `Detector`'s outputs, no weights to train."""

    def __init__(self, num_classes: int, blind: bool = False):
        from tests.realdata import CLASS_COLOURS

        super().__init__()
        self.colours = torch.tensor(CLASS_COLOURS[:num_classes], dtype=torch.float32)
        self.blind = blind

    def _outputs(self, clip: torch.Tensor):
        x = clip.float() * (1.0 if clip.dtype == torch.uint8 else 255.0)
        # (B, C, T, H, W): the pixel is within 40 of class c's colour in every channel.
        hit = (x[:, None] - self.colours[None, :, :, None, None, None]).abs().amax(2) < 40
        fg = hit.any(1) & (not self.blind)
        loc = torch.where(fg, 8.0, -8.0)
        counts = hit.flatten(2).sum(-1).float()
        cls = 10 * counts / counts.sum(1, keepdim=True).clamp_min(1)
        return loc, cls, counts

    def forward(self, clip, generator=None):
        from claus.models.detector import DetectorOutput

        return DetectorOutput(*self._outputs(clip))

    def mc_forward(self, clip, passes=10, generator=None, masks=None):
        from claus.models.detector import MCOutput

        loc, cls, emb = self._outputs(clip)
        return MCOutput(loc.expand(passes, *loc.shape), cls.expand(passes, *cls.shape), emb)


def test_evaluation_drops_an_unreadable_video_from_detections_and_ground_truth(real_ucf24,
                                                                               tmp_path):
    """The report on the damaged data equals the report on the other videos alone (a detector
    that sees the actors, so ground truth left in would cost recall), through DataLoader
    workers."""
    from claus.data.faults import BadVideos
    from claus.eval.pipeline import evaluate_split

    data, cut = _damage(real_ucf24, tmp_path)
    b = data.names("test")[0]
    lost = cut(b, 9)
    damaged = data.load()
    model = ColourDetector(damaged.num_classes)
    bad = BadVideos.of(damaged, 0.5)
    with pytest.warns(UserWarning, match=f"'{b}' left out of evaluation: frame 9: image {lost}"):
        got = evaluate_split(model, damaged, "test", T=4, stride=1, size=(60, 80), workers=2,
                             bad=bad)
    clean = real_ucf24.load()
    others = clean.subset([i for i, v in enumerate(clean) if v.name != b])
    want = evaluate_split(model, others, "test", T=4, stride=1, size=(60, 80))
    assert want["f-mAP@0.5"] > 50 and want["videos"] == data.num_test - 1
    assert got["skipped"] == {b: {"file": str(lost), "reason": bad.get(b).reason}}
    for k in ("videos", "frames", "f-mAP@0.5", "v-mAP@0.5", "v-mAP@0.5:0.95", "accuracy",
              "per_class"):
        assert got[k] == want[k], k
    # Nothing readable: one line, not an empty report.
    for name in data.names("test"):
        cut(name, 0, "delete")
    from claus.data.faults import TooManyBadVideos

    with pytest.warns(UserWarning), pytest.raises(TooManyBadVideos, match="none of the 3 "
                                                  "videos of split 'test' could be read"):
        evaluate_split(model, data.load(), "test", T=4, stride=1, size=(60, 80),
                       bad=BadVideos.of(damaged, 1.0))


def test_training_with_an_unreadable_video_resumes_identically(real_ucf24, tmp_path):
    """The video found unreadable in epoch 1 is out of epoch 2 in a resumed run too (it is in
    epoch 1's record), so the weights equal an uninterrupted run's; the clips of a clean
    dataset are the same as without the skipping."""
    import warnings

    from claus.data import LabelState, TrainClips
    from claus.data.clips import collate_clips
    from claus.training import TrainConfig, fit, read_metrics
    from torch.utils.data import DataLoader

    data, cut = _damage(real_ucf24, tmp_path)
    a = data.names("train")[1]
    _cut_every(cut, a, data.videos[a].num_frames)
    ds = data.load()
    labels = LabelState.full(ds)
    cfg = TrainConfig(epochs=2, batch_size=4, min_clips_per_epoch=0, T=4, stride=1, size=32,
                      device="cpu", max_bad_share=0.5)
    with pytest.warns(UserWarning, match=f"'{a}' left out of training"):
        straight = fit(cfg, ds, labels, tmp_path / "a", progress=False)

    class Interrupt(Exception):
        pass

    def stop(epoch, record):
        raise Interrupt

    with pytest.warns(UserWarning), pytest.raises(Interrupt):
        fit(cfg, ds, labels, tmp_path / "b", progress=False, on_epoch_end=stop)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        resumed = fit(cfg, ds, labels, tmp_path / "b", progress=False)
    assert "left out" not in _messages(rec)  # known from epoch 1's record: not read again
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    ra, rb = (read_metrics(tmp_path / d / "metrics.jsonl") for d in "ab")
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in ra] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in rb]
    assert list(ra[0]["unreadable"]) == [a] and "unreadable" not in ra[1]
    # Workers or not, the same batches, the same failure reports; a replaced item keeps the
    # batch full.
    clips = TrainClips(ds, labels, T=4, stride=1, size=32, seed=3, skip_unreadable=True)
    clips.set_epoch(0)
    runs = [list(DataLoader(clips, batch_size=6, num_workers=w, collate_fn=collate_clips))
            for w in (0, 2)]
    for b0, b2 in zip(*runs, strict=True):
        assert torch.equal(b0["clip"], b2["clip"]) and b0["unreadable"] == b2["unreadable"]
        assert len(b0["clip"]) == min(6, len(clips)) or b0 is runs[0][-1]
    assert {f["video"] for b in runs[0] for f in b["unreadable"]} == {a}
    clean = real_ucf24.load()
    lab = LabelState.full(clean)
    plain = TrainClips(clean, lab, T=4, stride=1, size=32, seed=3)
    skipping = TrainClips(clean, lab, T=4, stride=1, size=32, seed=3, skip_unreadable=True)
    for i in range(len(plain)):
        x, y = plain[i], skipping[i]
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_rounds_leave_unreadable_videos_out_of_scoring_and_selection(real_ucf24, tmp_path,
                                                                     capsys):
    """An active-learning round on data where one training video has a truncated frame: not
    scored, never selected, listed in round.json; past the share, one line."""
    import json

    from claus.train import main

    from tests.test_real_rounds import SMALL

    data, cut = _damage(real_ucf24, tmp_path)
    c = data.names("train")[2]
    lost = cut(c, 11)
    out = tmp_path / "exp"
    argv = [*data.cli_args(), "--strategy", "uncertainty", *SMALL]
    with pytest.warns(UserWarning) as rec:
        assert main([*argv, "--out", str(out), "--max-bad-share", "0.2"]) == 0
    assert f"video '{c}' left out of " in _messages(rec) and str(lost) in _messages(rec)
    run = out / "uncertainty" / "seed0"
    r0 = json.loads((run / "round_000" / "round.json").read_text())
    assert c in r0["skipped"]["score"]
    assert r0["skipped"]["score"][c]["file"] == str(lost)
    for r in (0, 1):
        skipped = json.loads((run / f"round_{r:03d}" / "round.json").read_text())["skipped"]
        assert {n for per in skipped.values() for n in per} == {c}
    sel = json.loads((run / "round_000" / "selection.json").read_text())
    assert sel["frames"] and c not in sel["frames"]
    scores = torch.load(run / "round_000" / "scores.pt", weights_only=True)
    row = scores["videos"].tolist().index(real_ucf24.load().index(c))
    assert not scores["covered"][row].any()  # not scored
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert c in line["skipped"]["score"]  # the run's summary lines carry it too
    capsys.readouterr()
    with pytest.warns(UserWarning):
        assert main([*argv, "--out", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of 9 videos could not be read (> 5%)" in err, err


def test_a_store_names_the_video_it_skipped(real_ucf24, tmp_path, capsys):
    """prepare skips a video with a truncated frame and records why; a dataset opened on the
    store says it was skipped while preparing (not "annotations only"), and a run on the store
    leaves it out; past the share prepare stops with one line, the index saved."""
    import json

    from claus.data import FrameReadError, load_dataset
    from claus.data.prepare import main as prepare
    from claus.train import main as train

    data, cut = _damage(real_ucf24, tmp_path)
    a = data.names("train")[0]
    lost = cut(a, 4)
    store = tmp_path / "store"
    base = [*data.cli_args(), "--size", "32x32", "--no-progress"]
    with pytest.warns(UserWarning, match=f"'{a}' left out of the frame store"):
        assert prepare([*base, "--out", str(store), "--max-bad-share", "0.2"]) == 0
    index = json.loads((store / "index.json").read_text())
    assert list(index["failed"]) == [a] and str(lost) in index["failed"][a]
    ds = load_dataset("ucf101-24", data.root, store=store)
    with pytest.raises(FrameReadError) as err:
        ds.read_frames(a, [0])
    text = str(err.value)
    assert "was skipped while preparing the frame store" in text and str(lost) in text
    assert "annotations only" not in text
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="skipped while preparing"):
        assert train([*data.cli_args(), "--store", str(store), "--labels", "full", *SMALL_TRAIN,
                      "--run", str(run), "--max-bad-share", "0.2"]) == 0
    res = json.loads((run / "results.json").read_text())
    assert list(res["skipped"]["train"]) == [a]
    capsys.readouterr()
    with pytest.warns(UserWarning):
        assert prepare([*base, "--out", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / 'strict'}: 1 of 9 "), err
    assert list(json.loads((tmp_path / "strict" / "index.json").read_text())["failed"]) == [a]


def test_export_leaves_an_unreadable_video_out(real_ucf24, tmp_path):
    """A waiting round whose requested video lost a frame since it was selected: the CVAT task
    (images, requests.jsonl, encoded videos) leaves it out, names it in a warning and in the
    README; the other requests are exported whole."""
    import json

    from claus.select import main as select
    from claus.train import main as train

    from tests.test_real_rounds import SMALL

    data, cut = _damage(real_ucf24, tmp_path)
    out = tmp_path / "exp"
    assert train([*data.cli_args(), "--strategy", "random", "--oracle", "human", *SMALL,
                  "--max-bad-share", "0.2", "--out", str(out)]) == 0
    run = out / "random" / "seed0"
    sel = json.loads((run / "round_000.partial" / "selection.json").read_text())
    asked = sorted(sel["frames"])
    assert len(asked) >= 2
    v = asked[0]
    lost = cut(v, sel["frames"][v][0])
    task = tmp_path / "task"
    encode = []
    av = pytest.importorskip("av")
    if "libx264" in av.codecs_available:
        encode = ["--encode", str(tmp_path / "videos")]
    with pytest.warns(UserWarning, match=f"'{v}' left out of the export: .*{lost}"):
        assert select(["--run", str(run), "--format", "cvat", "--out", str(task), *encode]) == 0
    images = {p.parent.relative_to(task / "images").as_posix()
              for p in (task / "images").rglob("*.jpg")}
    assert images == set(asked) - {v}
    requests = [json.loads(x)["video"] for x in (task / "requests.jsonl").read_text()
                .splitlines() if "video" in json.loads(x)]
    assert sorted(requests) == sorted(set(asked) - {v})
    readme = (task / "README.md").read_text()
    assert f"`{v}`" in readme and str(lost) in readme and "--allow-missing" in readme
    if encode:
        mp4 = {p.relative_to(tmp_path / "videos").with_suffix("").as_posix()
               for p in (tmp_path / "videos").rglob("*.mp4")}
        assert mp4 == set(asked) - {v}
    # Label Studio with the model's boxes as pre-annotations: the unreadable video's task has
    # none (a warning names it), the others are predicted.
    from claus.annotation import predict_requests
    from claus.annotation.pending import open_pending

    with pytest.warns(UserWarning, match=f"{v}.*{lost}"):
        preds = predict_requests(open_pending(run))
    assert sorted(preds) == asked and preds[v] == []


def test_a_model_without_foreground_falls_back_to_a_documented_order(real_ucf24, caplog):
    """A model whose foreground probability is 0 everywhere scores no frame: the scored
    strategies rank its videos in a seeded random order (not by name) and take equally spaced
    frames (not 0, 1, 2, ...), with one warning counting them."""
    import logging

    from claus.data import LabelState
    from claus.selection.pool import score_pool
    from claus.selection.strategies import equidistant_frames, select_round

    ds = real_ucf24.load()
    train = ds.split_indices("train")
    pool = score_pool(ColourDetector(ds.num_classes, blind=True), ds, train, T=4, stride=1,
                      size=(60, 80), passes=2)
    assert not pool.scores.informative.any()
    names = [ds[i].name for i in train]
    lengths = [ds[i].num_frames for i in train]
    labels = LabelState.empty(ds)

    def choose(strategy, seed):
        return select_round(strategy, names=names, num_frames=lengths,
                            frame_costs=[np.ones(n, np.int64) for n in lengths],
                            labelled=[labels.frames(n) for n in names], budget=12,
                            videos_per_round=3, rng=np.random.default_rng(seed),
                            scores=pool.scores, clusters=np.zeros(len(names), np.int64))

    with caplog.at_level(logging.WARNING, logger="claus.selection.strategies"):
        sel = choose("uncertainty", 0)
    said = [r.getMessage() for r in caplog.records if "no foreground" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"{len(names)} of the {len(names)} candidate")
    for name, frames in sel.frames.items():
        n = lengths[names.index(name)]
        assert frames == equidistant_frames(n, set(), 4) and frames != list(range(4))
        assert sel.scores[name] == [None] * 4 and sel.video_scores[name] is None
    # The videos: the seed's order (a ranking by name would be the same for every seed).
    for strategy in ("uncertainty", "claus"):
        orders = {tuple(choose(strategy, seed).frames) for seed in range(6)}
        assert len(orders) > 1, strategy
        assert tuple(choose(strategy, 5).frames) == tuple(choose(strategy, 5).frames)


def test_runs_written_before_max_bad_share_resume(tmp_path, finished):
    """config.json without the field reads as the default and is not a difference; a resumed
    run may change it (kept for later resumes)."""
    import json

    from claus.rounds import read_run_config

    run = _run(tmp_path, finished)
    doc = json.loads((run / "config.json").read_text())
    del doc["train"]["max_bad_share"]
    (run / "config.json").write_text(json.dumps(doc))
    cfg = read_run_config(run)
    assert cfg.train.max_bad_share == 0.05
    run_rounds(run, cfg, trainer=fake_trainer(), progress=False)
    assert "max_bad_share" not in json.loads((run / "config.json").read_text())["train"]
    lax = cfg.replace(train=cfg.train.replace(max_bad_share=0.5))
    run_rounds(run, lax, trainer=fake_trainer(), progress=False)
    assert read_run_config(run).train.max_bad_share == 0.5


def test_resume_flag_may_change_max_bad_share_only(tmp_path, finished, capsys):
    """`--resume RUN --max-bad-share S` is the one training flag a resume takes (the error of a
    run with too many bad videos advises it); any other is refused in one line."""
    import json

    from claus.rounds import read_run_config
    from claus.train import main

    run = _run(tmp_path, finished)
    assert main(["--resume", str(run), "--max-bad-share", "0.25", "--quiet"]) == 0
    assert read_run_config(run).train.max_bad_share == 0.25
    assert json.loads((run / "config.json").read_text())["train"]["max_bad_share"] == 0.25
    capsys.readouterr()
    assert main(["--resume", str(run), "--max-bad-share", "0.25", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --lr: ") and "--max-bad-share" in err[0]
