"""Videos nobody has labelled yet: a folder of .mp4 files and frame folders, no boxes. The
loop runs through the CLI with budgets in frames, an initial set chosen by claus and exported
like any round, and a scripted annotator who answers each round through another import format
(CVAT for images, CVAT for video, Label Studio, AVA CSV) from ground truth that claus never
sees; evaluation uses the small labelled test set, or is skipped and said so."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from claus.annotate import main as annotate_main
from claus.annotation import open_pending
from claus.data import LabelState, load_dataset, save_custom
from claus.rounds import RunPlan, simulated_oracle
from claus.select import main as select_main
from claus.train import main as train_main

from tests.test_annotation import (
    _cvat_images_xml,
    _cvat_video_xml,
    _labelstudio_export,
    _write_ava,
    canon,
)

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    """The ground truth the scripted annotator knows and claus does not."""
    return load_dataset("synthetic", preset="tiny", cache_dir=tmp_path_factory.mktemp("syn"))


def _write_mp4(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = 8
        for img in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def write_folder(root: Path, hidden, test: bool = True) -> Path:
    """The user's folder: train videos as .mp4 (even) or PNG frame folders (odd), the class
    list, and (with `test`) the labelled test videos as a claus dataset JSON."""
    from PIL import Image

    for k, i in enumerate(hidden.split_indices("train")):
        v = hidden[i]
        frames = hidden.read_frames(i, range(v.num_frames))
        if k % 2 == 0:
            _write_mp4(root / "train" / f"{v.name}.mp4", frames)
        else:
            d = root / "train" / v.name
            d.mkdir(parents=True)
            for f, img in enumerate(frames):
                Image.fromarray(img).save(d / f"img{f:04d}.png")
    (root / "classes.txt").write_text("\n".join(hidden.classes) + "\n")
    if test:
        test_idx = hidden.split_indices("test")
        sources = {}
        for i in test_idx:
            v = hidden[i]
            arr = root / "test" / (v.name.replace("/", "_") + ".npy")
            arr.parent.mkdir(parents=True, exist_ok=True)
            np.save(arr, hidden.read_frames(i, range(v.num_frames)))
            sources[v.name] = {"array": str(arr.relative_to(root))}
        save_custom(hidden.subset(test_idx), root / "test.json", sources)
    return root


ARGS = ["--dataset", "videos", "--init", "4", "--step", "4", "--target", "16",
        "--epochs", "1", "--batch-size", "4", "--min-clips-per-epoch", "0", "--T", "4",
        "--stride", "1", "--passes", "2", "--videos-per-round", "3", "--device", "cpu",
        "--quiet", "--no-pictures"]


def answer(run: Path, hidden, fmt: str, tmp: Path, capsys) -> None:
    """The scripted annotator: export the waiting round, label it from the hidden ground truth
    in `fmt`, import it through the CLI, and check claus recorded what the ground truth says."""
    pending = open_pending(run)
    proxy = SimpleNamespace(dataset=hidden, requests=pending.requests,
                            requested=pending.requested)
    tmp.mkdir(parents=True, exist_ok=True)
    if fmt == "cvat-images":
        assert select_main(["--run", str(run), "--format", "cvat"]) == 0
        images = pending.folder / "export" / "cvat" / "images"
        files = [tmp / "cvat.xml"]
        files[0].write_text(_cvat_images_xml(proxy, images))
    elif fmt == "cvat-xml":
        files = []
        for r in pending.requests:
            files.append(tmp / f"task{len(files)}.xml")
            files[-1].write_text(_cvat_video_xml(proxy, r.video))
    elif fmt == "labelstudio":
        assert select_main(["--run", str(run), "--format", "labelstudio"]) == 0
        tasks = json.loads((pending.folder / "export" / "labelstudio" / "tasks.json").read_text())
        files = [tmp / "ls.json"]
        files[0].write_text(json.dumps(_labelstudio_export(proxy, tasks)))
    else:
        files = [_write_ava(proxy, tmp / "boxes.csv")]
    capsys.readouterr()
    assert annotate_main(["--run", str(run), "--file", *map(str, files), "--format", fmt]) == 0
    got = LabelState.load(pending.folder / "next_labels.json", pending.dataset)
    # What the ground truth says of the requested frames (claus's labels carry the GT's
    # classes and boxes, the video names match).
    want = simulated_oracle(hidden, _relabel(pending.labels, hidden), pending.selection,
                            pending.label_round)
    assert canon(got) == canon(want)


def _relabel(labels: LabelState, hidden) -> LabelState:
    """`labels` as a state over the hidden dataset (same videos and frames)."""
    out = LabelState(hidden.name, labels.num_frames)
    for v in labels.videos:
        for f, boxes in labels.entries(v).items():
            out.label(v, f, boxes, int(labels.rounds(v)[f]))
    return out


def test_unlabelled_folder_runs_the_loop_with_people(tmp_path, hidden, capsys):
    root = write_folder(tmp_path / "mine", hidden)
    ds = load_dataset("videos", root)
    assert ds.annotated("test") and not ds.annotated("train")
    assert sorted(ds[i].name for i in ds.split_indices("train")) == sorted(
        hidden[i].name for i in hidden.split_indices("train"))
    for i in ds.split_indices("train"):
        assert ds[i].num_frames == hidden.video(ds[i].name).num_frames
    out = tmp_path / "runs"
    argv = [*ARGS, "--root", str(root), "--strategy", "uncertainty", "--oracle", "human",
            "--out", str(out)]
    assert train_main(argv) == 0
    assert "waits for human labels" in capsys.readouterr().out
    run = out / "uncertainty" / "seed0"
    # Round 0 trained nothing: it chose the initial set, spread frames of random videos.
    sel = json.loads((run / "round_000.partial" / "selection.json").read_text())
    total = ds.num_frames("train")
    assert sel["initial"] and sel["budget_unit"] == "frames"
    assert sel["cost"] == sel["budget"] == round(0.04 * total)
    assert not (run / "round_000.partial" / "model.pt").exists()
    # --init-frames-per-video (3) frames per video; the last video takes the remainder.
    assert len(sel["frames"]) == sel["budget"] // 3
    for frames in list(sel["frames"].values())[:-1]:
        assert len(frames) == 3 and np.diff(sorted(frames)).min() >= 2  # spread out
    for r, fmt in enumerate(("cvat-images", "cvat-xml", "labelstudio", "ava-csv")):
        answer(run, hidden, fmt, tmp_path / f"answer{r}", capsys)
        assert train_main(["--resume", str(run), "--quiet", "--no-pictures"]) == 0
        capsys.readouterr()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["percent"] for x in lines] == [0, 4, 8, 12, 16]
    # Budgets in frames, spent exactly; every trained round evaluated on the test set.
    assert [x["labelled_frames"] for x in lines] == [round(p / 100 * total) for p in
                                                     (0, 4, 8, 12, 16)]
    assert lines[0]["metrics"] == {} and "initial selection" in lines[0]["note"]
    for x in lines[1:]:
        assert x["budget_unit"] == "frames" and "f-mAP@0.5" in x["metrics"]


def test_without_a_test_set_evaluation_is_skipped_and_said(tmp_path, hidden):
    root = write_folder(tmp_path / "mine", hidden, test=False)
    ds = load_dataset("videos", root)
    assert ds.splits == ["train"]
    from claus.config import RunConfig

    plan = RunPlan.of(RunConfig(data=ds.spec, strategy="random", oracle="human",
                                init_percent=4, step_percent=4, target_percent=8), ds)
    assert plan.unit.name == "frames" and plan.initial == "select" and not plan.evaluate
    assert plan.percents == [0, 4, 8]
    # The report says why its table is empty.
    from claus import reports

    lines = [{"round": 1, "percent": 4.0, "strategy": "random", "seed": 0, "metrics": {},
              "note": "no labelled test videos: evaluation skipped"}]
    path, _ = reports.write_report(tmp_path / "exp", lines, pictures=False)
    assert "no labelled test videos: evaluation skipped" in path.read_text()
    with pytest.raises(ValueError, match="--oracle human"):
        RunPlan.of(RunConfig(data=ds.spec, strategy="random"), ds)
    with pytest.raises(ValueError, match="--budget-unit frames"):
        RunPlan.of(RunConfig(data=ds.spec, strategy="random", oracle="human",
                             budget_unit="boxes"), ds)


def test_folder_errors_name_the_file(tmp_path, hidden, capsys):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(FileNotFoundError, match="classes.txt: missing"):
        load_dataset("videos", root)
    (root / "classes.txt").write_text("wave\n")
    with pytest.raises(ValueError, match="no readable video files"):
        load_dataset("videos", root)
    _write_mp4(root / "a.mp4", np.zeros((6, 32, 32, 3), np.uint8))
    (root / "broken.mp4").write_bytes(b"not a video")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable video\(s\): broken"):
        ds = load_dataset("videos", root)
    assert [v.name for v in ds.videos] == ["a"] and ds[0].num_frames == 6
    # Through the CLI: one line, exit 2, nothing written.
    argv = ["--dataset", "videos", "--root", str(tmp_path / "nowhere"), "--strategy", "random",
            "--oracle", "human", "--out", str(tmp_path / "o"), "--quiet"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err and not (tmp_path / "o").exists()
