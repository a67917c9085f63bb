"""The report's aggregates (`claus.reports`: mean ± sample std and n per strategy, budget and
metric; the table built from them) on hand-computed cases, and `python -m claus.demo` (the
STeW demo: interpolated pseudo-labels, weights per frame, fused op vs reference, a fit)."""

from __future__ import annotations

import math
import re

import pytest
import torch
from claus import demo
from claus.reports import aggregate, results_table, write_report

import claus_ext


def line(strategy, percent, seed, **metrics):
    return {"strategy": strategy, "percent": percent, "seed": seed, "metrics": metrics,
            "wall_s": 10.0, "round": 0}


LINES = [
    # random at 1%: three seeds, one of which has no v-mAP (None: undefined, not 0).
    line("random", 1, 0, **{"f-mAP@0.5": 10.0, "v-mAP@0.5": 5.0}),
    line("random", 1.0, 1, **{"f-mAP@0.5": 20.0, "v-mAP@0.5": None}),
    line("random", 1.0, 2, **{"f-mAP@0.5": 30.0, "v-mAP@0.5": 7.0}),
    line("random", 2.0, 0, **{"f-mAP@0.5": 40.0, "v-mAP@0.5": 30.0}),
    line("claus", 1.0, 0, **{"f-mAP@0.5": 12.0, "v-mAP@0.5": 4.0}),
    line("claus", 1.0, 1, **{"f-mAP@0.5": 18.0, "v-mAP@0.5": 8.0}),
    line("full", 100.0, 0, **{"f-mAP@0.5": 80.0, "v-mAP@0.5": 60.0}),
    line("full", 100.0, 1, **{"f-mAP@0.5": 90.0, "v-mAP@0.5": 70.0}),
]


def test_aggregate_mean_sample_std_and_count_by_hand():
    agg = aggregate(LINES)
    assert set(agg) == {"random", "claus", "full"}
    assert set(agg["random"]) == {1.0, 2.0}
    f1 = agg["random"][1.0]["f-mAP@0.5"]
    # mean 20; sample std sqrt(((10-20)² + 0 + (30-20)²) / (3 - 1)) = 10 (ddof 0 would be 8.16)
    assert f1 == pytest.approx((20.0, 10.0, 3))
    # None is skipped: mean of 5 and 7, std sqrt(2), two values
    assert agg["random"][1.0]["v-mAP@0.5"] == pytest.approx((6.0, math.sqrt(2), 2))
    assert agg["random"][2.0]["f-mAP@0.5"] == (40.0, 0.0, 1)  # one seed: std 0, not NaN
    assert agg["claus"][1.0]["f-mAP@0.5"] == pytest.approx((15.0, math.sqrt(18), 2))
    assert agg["full"][100.0]["v-mAP@0.5"] == pytest.approx((65.0, math.sqrt(50), 2))


def test_results_table_cells_by_hand():
    table = results_table(aggregate(LINES)).splitlines()
    assert table[0] == ("| strategy | f-mAP@0.5 @1% | v-mAP@0.5 @1% | f-mAP@0.5 @2% | "
                        "v-mAP@0.5 @2% |")
    rows = {r.split(" | ")[0].lstrip("| "): r for r in table[2:]}
    assert list(rows) == ["random", "claus", "full (100%)"]  # the paper's order, full last
    assert rows["random"] == "| random | 20.0 ± 10.0 | 6.0 ± 1.4 | 40.0 | 30.0 |"
    assert rows["claus"] == "| claus | 15.0 ± 4.2 | 6.0 ± 2.8 | – | – |"
    assert rows["full (100%)"] == "| full (100%) |" + " 85.0 ± 7.1 | 65.0 ± 7.1 |" * 2


def test_report_table_and_wall_time(tmp_path):
    path, figs = write_report(tmp_path, LINES, pictures=False)
    text = path.read_text()
    assert figs == [] and results_table(aggregate(LINES)) in text
    assert "seeds [0, 1, 2]" in text and "Sum of round wall times: 80 s over 8 rounds" in text


def test_report_names_videos_left_out_as_unreadable(tmp_path):
    """Lines whose rounds skipped unreadable videos: results.md names each video once with the
    stages it was left out of; clean lines add no such line."""
    bad = {"train": {"b/v2": {"file": "/d/b/v2/00003.jpg", "reason": "missing"}},
           "score": {"a/v1": {"file": "/d/a/v1/00001.jpg", "reason": "truncated"},
                     "b/v2": {"file": "/d/b/v2/00003.jpg", "reason": "missing"}}}
    lines = [dict(LINES[0], skipped=bad), dict(LINES[3], skipped={"eval": bad["train"]}),
             *LINES[4:]]
    text = write_report(tmp_path, lines, pictures=False)[0].read_text()
    assert ("Left out as unreadable (missing or truncated frames): a/v1 (score); "
            "b/v2 (eval, score, train);") in text
    clean = write_report(tmp_path / "clean", LINES, pictures=False)[0].read_text()
    assert "unreadable" not in clean


# ---------------------------------------------------------------------------- the demo
def test_demo_interpolation_and_masks_by_hand():
    boxes = torch.tensor([[0.0, 0, 4, 4], [9, 9, 9, 9], [9, 9, 9, 9], [6, 3, 10, 7],
                          [9, 9, 9, 9]])
    out = demo.interpolate(boxes, [0, 3])
    want = torch.tensor([[0.0, 0, 4, 4], [2, 1, 6, 5], [4, 2, 8, 6], [6, 3, 10, 7],
                         [6, 3, 10, 7]])  # linear between labels, held after the last
    assert torch.allclose(out, want)
    assert torch.equal(demo.interpolate(boxes, [3])[0], boxes[3])  # held before the first
    # Pixel centres (x + 0.5) inside the box, edges included: [1, 3] covers centres 1.5, 2.5.
    m = demo.boxes_to_masks(torch.tensor([[1.0, 0.5, 3.0, 1.5]]), 5)[0]
    assert m.dtype == torch.uint8
    assert m.nonzero().tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]
    gt, masks = demo.moving_square(8, 32, 8, seed=0)
    assert torch.allclose(gt[:, 2:] - gt[:, :2], torch.full((8, 2), 8.0))
    assert (gt >= 0).all() and (gt <= 32).all() and (gt[1:, :2] > gt[:-1, :2]).all()
    assert torch.equal(masks, demo.boxes_to_masks(gt, 32))


def test_demo_runs_and_reports(capsys):
    demo.main(["--frames", "8", "--size", "16", "--steps", "30"])
    out = capsys.readouterr().out
    assert "a person labelled frames [1, 5]" in out
    rows = re.findall(r"^\s*(\d+) \| (yes|\s*) *\| +([\d.]+) \| ([\d.]+)%$", out, re.M)
    assert [int(r[0]) for r in rows] == list(range(8))
    for t, mark, weight, agree in rows:
        labelled = int(t) in (1, 5)
        assert (mark == "yes") == labelled
        # a labelled frame: weight 1 and the true box; the others weigh less
        assert (float(weight) == 1.0) if labelled else (0.0 <= float(weight) < 1.0)
        if labelled:
            assert float(agree) == 100.0
    err = float(re.search(r"max relative difference ([\d.e+-]+)", out).group(1))
    assert err <= 1e-4
    losses = [float(x) for x in re.findall(r"STeW loss ([\d.]+)", out)]
    assert len(losses) >= 2 and losses[-1] < losses[0] / 4
    iou = float(re.search(r"IoU ([\d.]+) with the pseudo-labels", out).group(1))
    assert iou > 0.9
    assert re.search(r"fused [\d.]+ ms, reference [\d.]+ ms", out)


def test_demo_stops_when_the_fused_op_disagrees(monkeypatch, capsys):
    fused = claus_ext.stew_stats
    monkeypatch.setattr(claus_ext, "stew_stats", lambda *a, **k: fused(*a, **k) * 1.01)
    with pytest.raises(SystemExit, match="disagrees with the reference"):
        demo.main(["--frames", "8", "--size", "16", "--steps", "1"])


def test_report_detections_picture_is_the_detection_strip(tmp_path):
    """One picture of detections: the report's is `plots.detection_strip` at its threshold."""
    from claus import plots
    from claus.data import load_dataset
    from claus.eval.settings import DetectionSettings
    from claus.models import build_model
    from claus.reports import plot_detections
    from claus.training import TrainConfig

    ds = load_dataset("synthetic:tiny")
    torch.manual_seed(0)
    model = build_model("tiny", ds.num_classes).eval()
    geo, video = TrainConfig(T=8).geometry, ds.split_indices("test")[0]
    a = plot_detections(model, ds, video, tmp_path / "a.png", geometry=geo, frames=4,
                        threshold=0.3)
    b = plots.detection_strip(model, ds, tmp_path / "b.png", video=video, num_frames=4,
                              geometry=geo, settings=DetectionSettings(fg_threshold=0.3))
    assert a.read_bytes() == b.read_bytes()
