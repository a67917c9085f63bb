"""README's "Active learning on your data": every command of the section, run as written on
rendered real-format data (paths mapped to the fixtures, small sizes appended)."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Appended to commands that start runs: the smallest sizes the tiny detector trains at.
SMALL = ["--init", "10", "--step", "10", "--target", "20", "--epochs", "1", "--batch-size",
         "4", "--min-clips-per-epoch", "0", "--T", "4", "--stride", "1", "--size", "32",
         "--passes", "2", "--clusters", "2", "--videos-per-round", "2", "--device", "cpu",
         "--quiet", "--no-pictures"]


def section_commands() -> dict[str, list[list[str]]]:
    """{dataset paragraph: [argv of each command]} of README's section, in order."""
    text = (REPO / "README.md").read_text()
    start = text.index("## Active learning on your data")
    body = text[start:text.index("\n## ", start + 3)]
    out: dict[str, list[list[str]]] = {}
    for part in re.split(r"^(?=\*\*)", body, flags=re.M)[1:]:
        para = part[2:part.index("**", 2)]
        blocks = re.findall(r"```bash\n(.*?)```", part, re.S)
        out[para] = [shlex.split(line) for block in blocks for line in block.splitlines()
                     if line.startswith("python -m claus")]
    return out


def test_the_section_shows_every_kind_of_data():
    got = section_commands()
    assert list(got) == ["UCF-101-24", "J-HMDB-21", "Your own annotated videos",
                         "A folder of labelled videos",
                         "A folder of videos nobody has labelled yet"]
    assert [len(v) for v in got.values()] == [5, 1, 1, 2, 4]


def run(argv: list[str], paths: dict[str, str], extra: list[str] = ()) -> int:
    """Run one README command in-process, its paths mapped (longest prefix first)."""
    import importlib

    assert argv[:2] == ["python", "-m"]
    mapped = []
    for tok in argv[3:]:
        for key in sorted(paths, key=len, reverse=True):
            if tok == key or tok.startswith(key + "/"):
                tok = paths[key] + tok[len(key):]
                break
        mapped.append(tok)
    return importlib.import_module(argv[2]).main([*mapped, *extra])


def _paths(tmp_path: Path, **data: str) -> dict[str, str]:
    return {"runs": str(tmp_path / "runs"), "stores": str(tmp_path / "stores"), **data}


def test_ucf24_commands(real_ucf24, i3d_weights, tmp_path, monkeypatch):
    cmds = section_commands()["UCF-101-24"]
    moved = tmp_path / "big" / "ucf101-24"
    paths = _paths(tmp_path, **{"data/ucf101-24": str(real_ucf24.root),
                                "/mnt/big/ucf101-24": str(moved),
                                "data/rgb_imagenet.pt": str(i3d_weights)})
    monkeypatch.chdir(REPO)  # configs/ is relative to the repository
    assert run(cmds[0], paths, SMALL) == 0
    assert run(cmds[1], paths) == 0
    assert (tmp_path / "stores" / "ucf-112" / "index.json").is_file()
    assert run(cmds[2], paths, SMALL) == 0
    cfg = json.loads((tmp_path / "runs" / "ucf-112" / "claus" / "seed0" / "config.json")
                     .read_text())
    assert cfg["data"]["store"] == str(tmp_path / "stores" / "ucf-112")
    shutil.copytree(real_ucf24.root, moved)  # the data moved: the run follows it
    assert run(cmds[3], paths) == 0
    cfg = json.loads((tmp_path / "runs" / "ucf" / "claus" / "seed0" / "config.json").read_text())
    assert cfg["data"]["root"] == str(moved)
    assert run(cmds[4], paths, [*SMALL, "--strategies", "claus", "--out",
                                str(tmp_path / "runs" / "paper")]) == 0
    paper = json.loads((tmp_path / "runs" / "paper" / "claus" / "seed0" / "config.json")
                       .read_text())
    assert paper["train"]["model"] == "i3d" and paper["cluster_cap"] == 0.54


@pytest.mark.parametrize("para, fixture, key", [
    ("J-HMDB-21", "real_jhmdb", "data/jhmdb-21"),
    ("Your own annotated videos", "real_custom", "data/mine/dataset.json"),
])
def test_annotated_dataset_commands(para, fixture, key, request, tmp_path):
    data = request.getfixturevalue(fixture)
    (cmd,) = section_commands()[para]
    assert run(cmd, _paths(tmp_path, **{key: str(data.root)}), SMALL) == 0
    assert list((tmp_path / "runs").glob("*/claus/seed0/round_001/round.json"))


def test_labelled_video_folder_commands(real_videos, tmp_path):
    """The AVA-style CSV of the rendered videos' ground truth, imported, then a round."""
    cams = tmp_path / "cams"
    (cams / "videos").mkdir(parents=True)
    ds = real_videos.load()
    test = []
    rows = []
    for v in ds.videos:
        src = Path(v.source.path)
        dst = cams / "videos" / (v.name + src.suffix)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        fps = v.source._stream()[1].average_rate
        if v.split == "test":
            test.append(v.name)
        for k, t in enumerate(v.tubes):
            for f in range(t.start, t.end):
                b = t.box(f)
                rows.append([v.name, f"{f / float(fps):.6f}", b[0] / v.width, b[1] / v.height,
                             b[2] / v.width, b[3] / v.height, ds.classes[t.label], k])
    with open(cams / "boxes.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    (cams / "test.txt").write_text("\n".join(test) + "\n")
    convert, train = section_commands()["A folder of labelled videos"]
    paths = _paths(tmp_path, **{"data/cams": str(cams)})
    assert run(convert, paths) == 0
    from claus.data import load_dataset

    got = load_dataset("custom", cams / "dataset.json")
    assert sorted(got[i].name for i in got.split_indices("test")) == sorted(test)
    assert len(got.videos) == len(ds.videos)
    assert run(train, paths, SMALL) == 0
    assert (tmp_path / "runs" / "cams" / "claus" / "seed0" / "round_001" / "round.json").is_file()


def test_unlabelled_folder_commands(tmp_path, capsys):
    from claus.annotation import open_pending
    from claus.data import load_dataset

    from tests.test_annotation import _cvat_images_xml
    from tests.test_unlabelled_videos import write_folder

    hidden = load_dataset("synthetic", preset="tiny", cache_dir=tmp_path / "syn")
    new = write_folder(tmp_path / "new", hidden)
    start, select, annotate, resume = section_commands()[
        "A folder of videos nobody has labelled yet"]
    paths = _paths(tmp_path, **{"data/new": str(new),
                                "annotations.xml": str(tmp_path / "annotations.xml")})
    assert run(start, paths, SMALL) == 0
    assert "waits for human labels" in capsys.readouterr().out
    assert run(select, paths) == 0
    run_dir = tmp_path / "runs" / "new" / "claus" / "seed0"
    pending = open_pending(run_dir)
    proxy = SimpleNamespace(dataset=hidden, requests=pending.requests)
    images = pending.folder / "export" / "cvat" / "images"
    (tmp_path / "annotations.xml").write_text(_cvat_images_xml(proxy, images))
    assert run(annotate, paths) == 0
    assert run(resume, paths, ["--quiet"]) == 0
    assert "waits for human labels" in capsys.readouterr().out  # round 1 trained and selected
    assert (run_dir / "round_000" / "round.json").is_file()
    assert (run_dir / "round_001.partial" / "model.pt").is_file()
