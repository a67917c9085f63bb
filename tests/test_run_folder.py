"""RunFolder: the run folder's layout, a round's atomic commit, and that no other code of claus
spells the folder's names.

The commit is killed before each of its renames in turn (manifest, summary, the folder, the
metrics file): the folder must then hold either the old state (the round still `.partial`,
not committed) or the new one (committed, no `.partial`), never both or neither, and a resume
must end with the files of an uninterrupted run.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest
from claus.rounds import load_metrics, run_rounds
from claus.run_folder import RoundFolder, RunFolder, experiment_run, experiment_runs

import tests.test_rounds as tr
from tests.rundiff import tree_diff

PYTHON = Path(__file__).resolve().parents[1] / "python" / "claus"
#: The names only claus.run_folder may spell (a regex each: "round_" not inside a word).
LAYOUT = {"round_": r"(?<![A-Za-z])round_", ".partial": r"\.partial", "selection.json":
          r"selection\.json", "round.json": r"(?<![A-Za-z_])round\.json", "metrics.jsonl":
          r"metrics\.jsonl", "labels.json": r"labels\.json"}
#: Other folders with files of the same names, and what is not yet read through RunFolder.
ELSEWHERE = {
    "annotation/cvat.py": {"labels.json"},        # CVAT's label list in an export folder
    "annotation/__init__.py": {"labels.json"},    # the same, in the formats' descriptions
    "supervised.py": {"labels.json", "metrics.jsonl"},  # a supervised run's folder
    "train.py": {"metrics.jsonl"},                # its help text, on supervised runs
    "training/*": {"metrics.jsonl"},              # the trainer's own log
    "annotate.py": {"labels.json"},               # prints the import's file (claus.annotate)
    "export.py": {"round_", ".partial"},          # --out's help text (claus.export)
}
#: RoundFolder's file properties (everything but the round number and state).
FILES = sorted(k for k, v in vars(RoundFolder).items()
               if isinstance(v, property) and k not in ("round", "in_progress"))


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _allowed(rel: str) -> set[str]:
    for pattern, names in ELSEWHERE.items():
        if rel == pattern or (pattern.endswith("/*") and rel.startswith(pattern[:-1])):
            return names
    return set()


def layout_strings() -> list[str]:
    """'module:line: name' for every string in claus's code (docstrings aside) that spells a
    run-folder name outside claus.run_folder and the exceptions above."""
    out = []
    for path in sorted(PYTHON.rglob("*.py")):
        rel = path.relative_to(PYTHON).as_posix()
        if rel == "run_folder.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs, allowed = _docstrings(tree), _allowed(rel)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docs):
                out += [f"{rel}:{node.lineno}: {name}" for name, rx in LAYOUT.items()
                        if name not in allowed and re.search(rx, node.value)]
    return sorted(out)


def test_only_run_folder_spells_the_layout():
    assert layout_strings() == []


def test_the_layout_check_finds_a_spelled_name(tmp_path, monkeypatch):
    # The check itself: a module that parses round folders by name is reported.
    fake = tmp_path / "claus"
    (fake / "annotation").mkdir(parents=True)
    (fake / "annotation" / "cvat.py").write_text('LABELS = "labels.json"\n')
    (fake / "leak.py").write_text('"""round_000/ in a docstring is fine."""\n'
                                  'def last(run):\n'
                                  '    return max(int(p.name[6:]) for p in '
                                  'run.glob("round_[0-9]*"))\n'
                                  'NOTE = f"see {1}/selection.json"\n'
                                  'WORD = "foreground_mass"\n')
    monkeypatch.setattr("tests.test_run_folder.PYTHON", fake)
    assert layout_strings() == ["leak.py:3: round_", "leak.py:4: selection.json"]


def test_layout_names_and_round_numbers(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.committed() == [] and run.started() == []  # no folder yet
    assert run.round(0).path == tmp_path / "run" / "round_000"
    assert run.partial(12).path == tmp_path / "run" / "round_012.partial"
    assert run.round(1234).path.name == "round_1234"
    assert (run.round(3).round, run.partial(3).round) == (3, 3)
    assert not run.round(3).in_progress and run.partial(3).in_progress
    assert RoundFolder(tmp_path / "work").round is None
    for name in ("round_000", "round_007", "round_1234", "round_0001", "round_7", "round_abc",
                 "round_003.partial", "round_004.partial", "round_005.partial.old",
                 "round_006.partial"):
        (run.path / name).mkdir(parents=True)
    for name in ("round_000", "round_1234", "round_0001", "round_7", "round_004.partial"):
        (run.path / name / "round.json").write_text("{}")
    (run.path / "round_002").write_text("")  # a file, not a round
    # round_007 has no summary (not committed); round_0001 and round_7 are no names the
    # writer gives (it spells round 1 round_001), so they are not read as round 1 or 7.
    assert run.committed() == [0, 1234]
    assert [p.round for p in run.started()] == [3, 4, 6]
    assert all(p.in_progress for p in run.started())
    work = run.partial(3)
    assert work / "x.txt" == work.path / "x.txt" and os.fspath(work) == str(work.path)
    # Every file of a round has a name of its own.
    names = [getattr(work, k).name for k in FILES]
    assert len(set(names)) == len(names) and all(getattr(work, k).parent == work.path
                                                 for k in FILES)


def test_experiment_layout(tmp_path):
    assert experiment_run(tmp_path, "claus", 3) == tmp_path / "claus" / "seed3"
    for s, k in (("random", 10), ("random", 2), ("claus", 0)):
        experiment_run(tmp_path, s, k).mkdir(parents=True)
    (tmp_path / "random" / "seedx").mkdir()
    (tmp_path / "random" / "seed4").write_text("")  # a file
    assert experiment_runs(tmp_path) == [("claus", 0, tmp_path / "claus" / "seed0"),
                                         ("random", 2, tmp_path / "random" / "seed2"),
                                         ("random", 10, tmp_path / "random" / "seed10")]
    assert experiment_runs(tmp_path / "none") == []


def test_a_run_writes_only_what_run_folder_names(tmp_path, ds):
    run = RunFolder(tmp_path / "r")
    lines = run_rounds(run.path, tr.cfg("claus", target_percent=10, clusters=2),
                       trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False)
    assert {p.name for p in run.path.iterdir()} == {
        run.config.name, run.metrics.name, "dataset.json", run.round(0).path.name,
        run.round(1).path.name}
    assert run.committed() == [0, 1] and run.started() == []
    for r in (0, 1):
        done = run.round(r)
        known = {getattr(done, k).name for k in FILES}
        assert {p.name for p in done.path.iterdir()} <= known
        assert done.summary.is_file() and done.manifest.is_file()
        done.verify()
    assert run.round(0).selection.is_file() and not run.round(1).selection.exists()
    assert run.summaries() == lines == load_metrics(run.path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ds):
    ref = tmp_path_factory.mktemp("ref") / "run"
    run_rounds(ref, tr.cfg(), trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False)
    return ref


#: The renames of round 1's commit, in order: manifest, summary, the folder, metrics file.
RENAMES = ("manifest", "summary", "folder", "metrics")


@pytest.mark.parametrize("kill", range(len(RENAMES)), ids=RENAMES)
def test_a_killed_commit_leaves_the_old_or_the_new_round(tmp_path, ds, reference, kill,
                                                         monkeypatch):
    real_commit, real_replace = RunFolder.commit, os.replace

    def commit(self, work, summary):
        done = []

        def replace(src, dst):
            if work.round == 1 and len(done) == kill:
                raise KeyboardInterrupt(f"killed before renaming {dst}")
            done.append(dst)
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        try:
            return real_commit(self, work, summary)
        finally:
            monkeypatch.setattr(os, "replace", real_replace)

    monkeypatch.setattr(RunFolder, "commit", commit)
    run = RunFolder(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt, match="killed before renaming"):
        run_rounds(run.path, tr.cfg(), trainer=tr.FakeTrainer().trainer(), dataset=ds,
                   progress=False)
    old = run.partial(1).path.is_dir() and 1 not in run.committed()
    new = 1 in run.committed() and not run.partial(1).path.exists()
    assert old != new and new == (RENAMES[kill] == "metrics")
    assert run.committed() == ([0, 1] if new else [0])
    # The metrics file names round 0 only: round 1's line comes with the rename after its own.
    assert [x["round"] for x in load_metrics(run.path)] == [0]
    if old:  # nothing half-written became visible, nothing of the round is lost
        assert run.partial(1).selection.is_file() and run.partial(1).next_labels.is_file()
    monkeypatch.undo()
    lines = run_rounds(run.path, tr.cfg(), trainer=tr.FakeTrainer().trainer(), dataset=ds,
                       progress=False)
    assert [x["round"] for x in lines] == [0, 1, 2]
    diff = tree_diff(run.path, reference)
    assert not diff, "\n".join(diff)


def test_commit_refuses_a_folder_that_is_not_a_round_in_progress(tmp_path):
    run = RunFolder(tmp_path)
    run.round(0).path.mkdir()
    for folder in (run.round(0), RoundFolder(tmp_path / "elsewhere.partial")):
        with pytest.raises(ValueError, match="not a round in progress"):
            run.commit(folder, {"round": 0})
    assert not run.metrics.exists() and run.committed() == []


def test_metrics_file_is_rebuilt_from_the_summaries(tmp_path):
    run = RunFolder(tmp_path)
    for r in (0, 1):
        run.partial(r).path.mkdir()
        run.commit(run.partial(r), {"round": r, "percent": 5.0 * (r + 1)})
    text = run.metrics.read_text()
    assert [json.loads(x)["round"] for x in text.splitlines()] == [0, 1]
    stamp = run.metrics.stat().st_mtime_ns
    run.write_metrics()  # already says that: untouched
    assert run.metrics.stat().st_mtime_ns == stamp
    run.metrics.write_text(text.splitlines()[0] + "\n{damaged\n")
    run.write_metrics()
    assert run.metrics.read_text() == text


def test_reports_find_their_rounds_through_run_folder(tmp_path, ds):
    from claus import reports
    from claus.rounds import run_experiment

    run_experiment(tmp_path, tr.cfg(), ["random", "claus"], [3, 4], include_full=False,
                   trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False)
    # Cluster map: the last run (seed) of the strategy that clusters, its last scored round
    # (the last round scores nothing).
    claus4 = RunFolder(experiment_run(tmp_path, "claus", 4))
    assert reports._cluster_round(tmp_path) == claus4.round(1)
    # Other pictures: the first run of the strategy that clusters, its last round.
    run, last = reports._sample_round(tmp_path)
    assert run.path == experiment_run(tmp_path, "claus", 3) and last == run.round(2)
    assert reports._cluster_round(tmp_path / "none") is None
    assert reports._sample_round(tmp_path / "none") is None
