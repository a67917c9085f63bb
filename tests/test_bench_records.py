"""Benchmark records: the CSV row writer of bench/common.py (columns, append, ratio against the
same run's baseline, peak memory, commit), the table generator bench/tables.py on hand-made CSVs,
and bench/cases.py's benchmark cases checked with the op tests' own checkers. No benchmark runs."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import claus_ext
from claus_ext import reference as ref

from .conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import cases  # noqa: E402
import common  # noqa: E402
import tables  # noqa: E402

from .test_cluster_ops import assert_assign_exact  # noqa: E402
from .test_scoring_ops import (  # noqa: E402
    assert_frame_stats_close,
    assert_selection_equal,
    clear_threshold,
)
from .test_stew import tolerances  # noqa: E402


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def timing(median, q20=None, q80=None, n=5, peak=100.0):
    return {"median": median, "q20": q20 or median, "q80": q80 or median, "n": n,
            "peak_mib": peak, "mem": "rss"}


# ---------------------------------------------------------------------------- the row writer
def test_rows_have_the_columns_and_the_header_is_written_once(tmp_path):
    for run in range(2):
        rec = common.Recorder("demo", folder=tmp_path)
        with rec.case("8,8,112,112") as c:
            c.add("fused", timing(2.0 + run, 1.9, 2.2), extra_figure=run)
            c.add("eager", timing(10.0), baseline=True)
        assert rec.rows == 2
    lines = read_csv(tmp_path / "demo.csv")
    assert lines[0] == list(common.COLUMNS)
    assert len(lines) == 5 and lines.count(list(common.COLUMNS)) == 1
    rows = [dict(zip(lines[0], r, strict=True)) for r in lines[1:]]
    r = rows[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["date"])
    assert re.fullmatch(r"([0-9a-f]{4,}(\+dirty)?|unknown)", r["commit"])
    assert "cores" in r["machine"] and f"torch {torch.__version__}" in r["machine"]
    assert float(r["load"]) >= 0 and r["device"] == "cpu"
    assert (r["case"], r["impl"], r["unit"]) == ("8,8,112,112", "fused", "ms")
    assert (float(r["median"]), float(r["p20"]), float(r["p80"]), r["n"]) == (2.0, 1.9, 2.2, "5")
    assert (r["peak_mib"], r["mem"]) == ("100.0", "rss")
    assert json.loads(r["extra"]) == {"extra_figure": 0}
    assert rows[1]["extra"] == ""  # no figures: an empty cell, not "{}"
    # The second run appended its own rows after the first's, with its own figures.
    assert [x["impl"] for x in rows] == ["fused", "eager", "fused", "eager"]
    assert float(rows[2]["median"]) == 3.0 and json.loads(rows[2]["extra"]) == {"extra_figure": 1}


def test_ratio_is_against_the_same_runs_baseline(tmp_path):
    rec = common.Recorder("r", folder=tmp_path)
    with rec.case("a") as c:  # the baseline measured after the others: ratios still exact
        c.add("fused", timing(2.0))
        c.add("compiled", timing(8.0))
        c.add("eager", timing(10.0), baseline=True)
    with rec.case("b") as c:  # another case: its own baseline, not case a's
        c.add("fused", timing(4.0))
        c.add("eager", timing(6.0), baseline=True)
    with rec.case("c") as c:  # no baseline measured: no ratio
        c.add("fused", timing(1.0))
    rows = [dict(zip(common.COLUMNS, r, strict=True)) for r in read_csv(tmp_path / "r.csv")[1:]]
    got = {(r["case"], r["impl"]): (r["baseline"], r["ratio"]) for r in rows}
    assert got == {("a", "fused"): ("eager", "5"), ("a", "compiled"): ("eager", "1.25"),
                   ("a", "eager"): ("eager", "1"), ("b", "fused"): ("eager", "1.5"),
                   ("b", "eager"): ("eager", "1"), ("c", "fused"): ("", "")}


def test_a_case_that_fails_writes_nothing_and_two_baselines_are_refused(tmp_path):
    rec = common.Recorder("f", folder=tmp_path)
    with pytest.raises(RuntimeError), rec.case("a") as c:
        c.add("fused", timing(1.0))
        raise RuntimeError("the benchmark broke mid-case")
    assert not (tmp_path / "f.csv").exists()
    with pytest.raises(ValueError, match="two baselines"), rec.case("b") as c:
        c.add("eager", timing(1.0), baseline=True)
        c.add("numpy", timing(2.0), baseline=True)
    assert not (tmp_path / "f.csv").exists()


def test_other_columns_are_refused_rather_than_mixed(tmp_path):
    (tmp_path / "old.csv").write_text("date,case,ms\n2026-01-01,a,1\n")
    rec = common.Recorder("old", folder=tmp_path)
    with pytest.raises(SystemExit, match="columns"), rec.case("a") as c:
        c.add("fused", timing(1.0))
    assert (tmp_path / "old.csv").read_text() == "date,case,ms\n2026-01-01,a,1\n"


def test_no_record_and_tests_leave_the_repository_alone(tmp_path, monkeypatch):
    import argparse

    ap = argparse.ArgumentParser()
    common.add_record_args(ap)
    rec = common.Recorder.from_args("x", ap.parse_args(["--no-record"]))
    with rec.case("a") as c:
        c.add("fused", timing(1.0))
    assert not rec.enabled and rec.rows == 0 and not rec.path.exists()
    # Inside pytest, without a folder or $CLAUS_BENCH_RESULTS: nothing goes to bench/results.
    monkeypatch.delenv("CLAUS_BENCH_RESULTS", raising=False)
    assert not common.Recorder("x").enabled
    monkeypatch.setenv("CLAUS_BENCH_RESULTS", str(tmp_path))
    rec = common.Recorder("x")
    with rec.case("a") as c:
        c.add("fused", timing(1.0))
    assert rec.enabled and len(read_csv(tmp_path / "x.csv")) == 2
    assert "recorded 1 rows" in rec.summary()


def test_commit_is_marked_dirty_by_tracked_changes_only(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "bench" / "results" / "stew.csv").write_text("date\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert common.git_commit(tmp_path) == head
    (tmp_path / "new.txt").write_text("untracked\n")
    (tmp_path / "bench" / "results" / "stew.csv").write_text("date\nrow\n")  # a recording
    assert common.git_commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert common.git_commit(tmp_path) == head + "+dirty"
    monkeypatch.setenv("CLAUS_COMMIT", "abc1234")
    assert common.git_commit(tmp_path / "bench" / "nowhere") == "abc1234"


def test_summarize_and_peak_memory():
    assert common.summarize([3.0, 1.0, 2.0]) == {"median": 2.0, "q20": 1.0, "q80": 3.0, "n": 3}
    s = common.summarize([float(x) for x in range(1, 11)])
    assert s["median"] == 5.5 and s["q20"] < s["median"] < s["q80"] and s["n"] == 10
    with common.PeakMemory("cpu") as big:
        block = np.ones(96 << 20, dtype=np.uint8)  # 96 MiB, touched
        start = common.status_mib("VmRSS")
        del block
    assert big.kind in ("rss", "rss-lifetime") and big.mib >= 90
    if big.kind == "rss":  # the peak is reset on entry: a block that allocates nothing is lower
        with common.PeakMemory("cpu") as small:
            pass
        assert small.mib < big.mib - 60 and big.mib >= start - 1
    t = common.time_fn(lambda: None, warmup=0, reps=3)
    assert t["n"] == 3 and t["peak_mib"] > 0 and t["mem"] == big.kind


# ---------------------------------------------------------------------------- tables
def write_records(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=common.COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in common.COLUMNS})


def rec_row(date, case, impl, median, machine="CPU X, 2 cores", device="cpu", ratio="",
            baseline="eager", **kw):
    return {"date": date, "commit": "abc1234", "machine": machine, "load": "1.50",
            "device": device, "case": case, "impl": impl, "unit": "ms", "median": median,
            "p20": median, "p80": median, "n": "5", "baseline": baseline, "ratio": ratio,
            "peak_mib": "300.0", "mem": "rss", **kw}


DOC = """# Results

Narrative before, kept as is.

<!-- table: stew -->
old table
<!-- /table -->

Between the tables | with a pipe, kept.

<!-- table: stew device=cuda -->
<!-- /table -->
Trailing text.
"""


def test_tables_take_the_latest_run_and_rewrite_only_between_markers(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_records(results / "stew.csv", [
        rec_row("2026-12-01T10:00:00Z", "8,8,112,112", "fused", "3.5", ratio="2"),
        rec_row("2026-12-01T10:00:00Z", "8,8,112,112", "eager", "7", ratio="1"),
        rec_row("2026-12-03T10:00:00Z", "8,8,112,112", "fused", "1.25", ratio="5.6",
                extra='{"gbps":12}'),
        rec_row("2026-12-01T10:00:00Z", "8,8,112,112", "fused", "0.02", machine="GPU Y",
                device="cuda", ratio="50"),
        rec_row("2026-12-02T10:00:00Z", "8,8,112,112", "compiled", "99", ratio="0.1"),
    ])
    doc = tmp_path / "RESULTS.md"
    doc.write_text(DOC)
    assert tables.main(["--check", "--file", str(doc), "--results", str(results)]) == 1
    assert doc.read_text() == DOC  # --check changes nothing
    assert tables.main(["--file", str(doc), "--results", str(results)]) == 0
    text = doc.read_text()
    # Text outside the markers is byte for byte the same.
    outside = re.sub(r"(<!-- table: [^>]*-->\n).*?(<!-- /table -->)", r"\1\2", text,
                     flags=re.S)
    assert outside == re.sub(r"(<!-- table: [^>]*-->\n).*?(<!-- /table -->)", r"\1\2", DOC,
                             flags=re.S)
    first, second = re.findall(r"<!-- table: [^>]*-->\n(.*?)<!-- /table -->", text, re.S)
    assert "old table" not in first
    fused = [line for line in first.splitlines() if "| fused |" in line]
    assert len(fused) == 2  # one per machine: the CPU's latest run (12-03), the GPU's
    assert "| 1.25 ms |" in fused[0] and "5.60x" in fused[0] and "2026-12-03 10:00" in fused[0]
    assert "gbps 12" in fused[0] and "3.50 ms" not in first
    assert "| 7.00 ms |" in first and "| baseline |" in first  # the eager row, older run kept
    assert "| compiled | 99.0 ms |" in first
    assert "CPU X, 2 cores (cpu)" in first and "GPU Y (cuda)" in first
    # The filtered table has the GPU row only.
    assert "GPU Y (cuda)" in second and "CPU X" not in second and "50.0x" in second
    assert tables.main(["--check", "--file", str(doc), "--results", str(results)]) == 0
    # A newer record makes the document stale again.
    with open(results / "stew.csv", "a", newline="") as f:
        csv.DictWriter(f, fieldnames=common.COLUMNS, lineterminator="\n").writerow(
            rec_row("2026-12-04T10:00:00Z", "8,8,112,112", "eager", "6"))
    assert tables.main(["--check", "--file", str(doc), "--results", str(results)]) == 1


def test_latest_breaks_date_ties_by_file_order_and_tables_without_records():
    rows = [rec_row("2026-12-01T10:00:00Z", "a", "fused", "1"),
            rec_row("2026-12-01T10:00:00Z", "a", "fused", "2"),
            rec_row("2026-11-30T10:00:00Z", "a", "fused", "3")]
    assert [r["median"] for r in tables.latest(rows)] == ["2"]
    assert "No recorded runs" in tables.render("stew", [])
    with pytest.raises(SystemExit, match="bad filter"):
        tables.parse_spec("stew colour=red")


def test_merge_appends_only_new_rows(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    old = rec_row("2026-12-01T10:00:00Z", "a", "fused", "1")
    new = rec_row("2026-12-02T10:00:00Z", "a", "fused", "2", machine="GPU Y", device="cuda")
    write_records(here / "stew.csv", [old])
    write_records(there / "stew.csv", [old, new])
    write_records(there / "cluster.csv", [new])
    assert tables.merge(there, here) == 2
    assert tables.merge(there, here) == 0
    assert len(read_csv(here / "stew.csv")) == 3 and len(read_csv(here / "cluster.csv")) == 2


# ---------------------------------------------------------------------------- the cases
# The smaller benchmark case of each op, at the size it is timed, through the op tests' checks.
def test_stew_bench_case_matches_reference():
    z, y, a = cases.stew_inputs(cases.STEW_SHAPES[0])
    assert z.shape == cases.STEW_SHAPES[0] and y.dtype == torch.uint8
    assert a.sum(1).tolist() == [2] * z.shape[0]  # two labelled frames per clip
    got = claus_ext.stew_stats(z, y, a, *cases.STEW_PARAMS)
    torch.testing.assert_close(got, ref.stew_stats(z, y, a, *cases.STEW_PARAMS),
                               **tolerances(torch.float32))


def test_scoring_bench_cases_match_reference():
    gen = torch.Generator().manual_seed(0)
    z = cases.frame_logits(cases.FRAME_SIZES[0], gen)
    assert z.shape == cases.frame_shape(cases.FRAME_SIZES[0])
    z = clear_threshold(z[:, :2].contiguous(), cases.FRAME_THRESHOLD)  # 2 of the 16 clips
    hw = cases.FRAME_SIZES[0] ** 2
    for mode in ("mean_log", "log_mean"):
        assert_frame_stats_close(claus_ext.frame_uncertainty(z, cases.FRAME_THRESHOLD, mode),
                                 ref.frame_uncertainty(z.double(), cases.FRAME_THRESHOLD, mode),
                                 hw)
    unc, cand, ann, lengths = cases.selection_pool(200)
    assert lengths.min() >= 30 and lengths.max() <= 900 and not (cand & ann).any()
    args = (*(torch.from_numpy(x) for x in (unc, cand, ann)), cases.SELECT_K,
            cases.SELECT_SIGMA, cases.SELECT_RADIUS)
    assert_selection_equal(claus_ext.select_frames(*args), ref.select_frames(*args))


def test_cluster_bench_case_matches_reference():
    x, c = cases.cluster_inputs(*cases.CLUSTER_CPU_SIZES[0])
    assert (*x.shape, c.shape[0]) == cases.CLUSTER_CPU_SIZES[0]
    assert_assign_exact(x, c, *claus_ext.cluster_assign(x, c))
    assert cases.shape_id(cases.CLUSTER_CPU_SIZES[0]) == "3000,408,5"
