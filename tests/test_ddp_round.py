"""A whole active-learning run under `torchrun --nproc-per-node 2` (gloo, CPU): round 0 trains,
evaluates, scores the pool, clusters, selects and reveals the labels, round 1 trains on them.

Two processes train another model than one (each rank takes half of every batch), so "selects
what one process selects" is checked from the same trained model: the two-process run's round 0
is rolled back to its trained state and resumed in one process, which must score, cluster,
select and label exactly as the two processes did. The two-process run must also complete on
every rank, repeat itself file for file, and leave the run folder to rank 0 alone.

Each rank runs `claus.experiment.main` through this file (`_worker`), which
* fails rank 1 on any write under the experiment folder (an audit hook sees every open for
  writing, rename and removal, whatever code does it);
* delays every rename (the moment a file appears) on rank 0, so a rank that reads a file
  without waiting at a barrier finds it missing, and starts rank 1 late, so rank 0 runs ahead;
* records on every rank a digest of what each scoring, selection and training call returned,
  so a rank that works from scores, labels or weights of its own is seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

ARGS = ["--preset", "tiny", "--strategies", "claus", "--seeds", "1", "--no-full",
        "--init", "5", "--step", "5", "--target", "10", "--passes", "3", "--clusters", "3",
        "--videos-per-round", "3", "--device", "cpu", "--quiet", "--no-pictures",
        # Enough training for foreground on the pool (informative frame scores): an untrained
        # detector scores nothing and every process would "select" the same first frames.
        "--epochs", "2", "--min-clips-per-epoch", "64", "--batch-size", "2", "--lr", "0.003"]
RUN = Path("claus") / "seed0"
TIMEOUT = 150  # s per launch; the runs take 10-20 s on 2 cores
#: Keys whose values are wall times, the only thing allowed to differ between repeats.
TIMES = {"wall_s", "seconds"}

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or
                                not torch.distributed.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


# --------------------------------------------------------------------------- the ranks' side
def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _watch(out: Path, rank: int, violations: list[str]) -> None:
    """Rank 1: record every write under `out`; rank 0: make every file appear late."""
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    root = str(out)

    def under(p) -> bool:
        if not isinstance(p, (str, bytes, os.PathLike)):
            return False  # a file descriptor
        p = os.path.abspath(os.fsdecode(p))
        return p == root or p.startswith(root + os.sep)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            if not under(path) or not (any(c in mode for c in "wax+") if isinstance(mode, str)
                                       else flags & write_flags):
                return
            paths = [path]
        elif event in ("os.rename", "os.remove", "os.rmdir", "shutil.rmtree",
                       "shutil.copyfile", "shutil.move"):
            paths = [p for p in args[:2] if under(p)]
            if not paths:
                return
        else:
            return
        if rank == 0:
            if event == "os.rename":
                time.sleep(0.05)
            return
        violations.append(f"{event} {[os.fsdecode(p) for p in paths]}")
        raise PermissionError(f"rank {rank} wrote the run folder: {event} {paths}")

    sys.addaudithook(hook)


def _record_calls(calls: list) -> None:
    """Wrap pool scoring, selection and training so every call's result is recorded."""
    from claus import rounds, training

    score_pool, select_round, fit = rounds.score_pool, rounds.select_round, training.fit

    def scored(*a, **k):
        ps = score_pool(*a, **k)
        st = ps.to_state()
        calls.append(["score_pool", ps.videos, _digest(
            *(st[n] for n in ("uncertainty", "entropy", "informative", "covered", "embeddings")))])
        return ps

    def selected(*a, **k):
        sel = select_round(*a, **k)
        calls.append(["select_round", json.loads(json.dumps(sel.to_json()))])
        return sel

    def fitted(cfg, ds, labels, *a, **k):
        model = fit(cfg, ds, labels, *a, **k)
        sd = model.state_dict()
        calls.append(["fit", labels.to_json(), _digest(*(sd[n] for n in sorted(sd)))])
        return model

    rounds.score_pool, rounds.select_round, training.fit = scored, selected, fitted


def _stagger() -> None:
    """Rank 1 leaves the process-group join late: rank 0 runs ahead to the first barrier."""
    from claus import training

    join = training.init_distributed

    def late() -> bool:
        ok = join()
        if int(os.environ.get("RANK", "0")) == 1:
            time.sleep(0.5)
        return ok

    training.init_distributed = late


def _worker(record: str, out: str, argv: list[str]) -> int:
    """One rank: `claus.experiment.main(argv)` watched; exit status 3 if rank 1 wrote."""
    rank = int(os.environ.get("RANK", "0"))
    violations: list[str] = []
    calls: list = []
    _watch(Path(out).resolve(), rank, violations)
    _record_calls(calls)
    _stagger()
    from claus.experiment import main

    try:
        rc = main(argv)
    finally:
        Path(record, f"rank{rank}.json").write_text(json.dumps(
            {"calls": calls, "violations": violations}))
    return 3 if violations else rc


# --------------------------------------------------------------------------- the test's side
def _launch(cmd: list[str], env: dict, log: Path) -> None:
    """Run `cmd` in its own process group; kill the whole group on a timeout (a hang)."""
    from tests.procs import run_group  # here: the ranks run this file as a script

    rc = run_group(cmd, env, log, TIMEOUT)
    if rc != 0:
        pytest.fail(f"exit status {rc}; log:\n" + log.read_text()[-6000:])


def _env(cache: Path) -> dict:
    env = {**os.environ, "CLAUS_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "python"),
                                          *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("WORLD_SIZE", None)
    return env


def _two_ranks(out: Path, cache: Path, args: list[str]) -> list[dict]:
    """`torchrun --nproc-per-node 2` of the experiment CLI into `out`; the ranks' records."""
    record = out.parent / (out.name + ".ranks")
    record.mkdir()
    _launch([sys.executable, "-m", "torch.distributed.run", "--standalone",
             "--nproc-per-node", "2", __file__, "--worker", str(record), str(out), *args],
            _env(cache), out.parent / (out.name + ".log"))
    ranks = [json.loads((record / f"rank{r}.json").read_text()) for r in range(2)]
    for r in ranks:
        assert r["violations"] == []
    return ranks


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))}


def _untimed(x):
    if isinstance(x, dict):
        return {k: _untimed(v) for k, v in x.items() if k not in TIMES}
    if isinstance(x, list):
        return [_untimed(v) for v in x]
    return x


def _same_file(a: Path, b: Path) -> bool:
    """Equal bytes, or equal but for wall times (JSON / JSONL), or equal tensors (.pt)."""
    if a.read_bytes() == b.read_bytes():
        return True
    if a.name == "manifest.json":  # sha256 of eval.json, which holds its wall time
        from tests.rundiff import same_manifest

        return same_manifest(a, b)
    if a.suffix == ".json":
        return _untimed(json.loads(a.read_text())) == _untimed(json.loads(b.read_text()))
    if a.suffix == ".jsonl":
        def load(p):
            return [_untimed(json.loads(x)) for x in p.read_text().splitlines() if x.strip()]
        return load(a) == load(b)
    if a.suffix == ".md":  # the report: its table, and a line with the summed wall times
        def table(p):
            return [x for x in p.read_text().splitlines() if "wall time" not in x]
        return table(a) == table(b)
    if a.suffix == ".pt":
        return _same_tree(torch.load(a, weights_only=True), torch.load(b, weights_only=True))
    return False


def _same_tree(a, b) -> bool:
    if isinstance(a, torch.Tensor):  # bit for bit (NaN, "no score", included)
        return isinstance(b, torch.Tensor) and _digest(a) == _digest(b)
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_same_tree(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.fixture(scope="module")
def data(cache) -> Path:
    """synthetic:tiny generated once, before any rank asks for it."""
    from claus.data import load_dataset

    load_dataset("synthetic", preset="tiny", cache_dir=cache)
    return cache


@pytest.fixture(scope="module")
def first(tmp_path_factory, data):
    """The two-process experiment: its folder and the ranks' records."""
    out = tmp_path_factory.mktemp("ddp") / "a"
    return out, _two_ranks(out, data, [*ARGS, "--out", str(out)])


def test_two_process_run_completes_deterministically_on_rank0(first, data, tmp_path):
    out, ranks = first
    run = out / RUN
    # Complete: both rounds committed, nothing half-done, the report written.
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["round"] for x in lines] == [0, 1]
    assert lines[1]["labelled_boxes"] == lines[0]["labelled_boxes"] + lines[0]["selected_boxes"]
    assert not list(run.glob("*.partial")) and (out / "results.md").is_file()
    for name in ("labels.json", "model.pt", "eval.json", "centers.pt", "scores.pt",
                 "selection.json", "next_labels.json", "round.json", "train/checkpoint.pt"):
        assert (run / "round_000" / name).is_file(), name
    assert (run / "round_001" / "labels.json").read_bytes() == (
        run / "round_000" / "next_labels.json").read_bytes()
    # The ranks scored, selected and trained alike: same scores (gathered), same selection,
    # same labels and weights after every fit.
    a, b = (r["calls"] for r in ranks)
    assert [c[0] for c in a] == ["score_pool", "fit", "score_pool", "select_round",
                                 "score_pool", "fit"]
    assert a == b
    # ... and rank 0 wrote the selection it computed (the file adds the budget and such).
    sel = json.loads((run / "round_000" / "selection.json").read_text())
    chosen = [c[1] for c in a if c[0] == "select_round"][0]
    assert chosen == {k: sel.get(k) for k in chosen}
    # Deterministic: a second run gives the same files (but for wall times).
    again = tmp_path / "b"
    _two_ranks(again, data, [*ARGS, "--out", str(again)])
    fa, fb = _files(out), _files(again)
    assert fa.keys() == fb.keys()
    assert [k for k in fa if fa[k].is_file() and not _same_file(fa[k], fb[k])] == []


def test_one_process_selects_what_two_processes_select_from_the_same_model(first, data,
                                                                          tmp_path):
    out, _ = first
    # Round 0 of the two-process run, rolled back to "trained and evaluated", resumed in one
    # process: scoring, clustering, selection and labelling from the very same weights.
    one = tmp_path / "one"
    shutil.copytree(out / RUN, one)
    shutil.rmtree(one / "round_001")
    (one / "metrics.jsonl").unlink()
    r0 = one / "round_000"
    for name in ("scores.pt", "selection.json", "next_labels.json", "round.json"):
        (r0 / name).unlink()
    r0.rename(one / "round_000.partial")
    _launch([sys.executable, "-m", "claus.experiment", "--resume", str(one), "--quiet"],
            _env(data), tmp_path / "one.log")
    two = out / RUN / "round_000"
    scores = [torch.load(p / "scores.pt", weights_only=True) for p in (one / "round_000", two)]
    assert scores[0]["informative"].any()  # scores that rank frames, not all "nothing"
    assert _same_tree(scores[0], scores[1])
    for name in ("selection.json", "next_labels.json"):
        assert (one / "round_000" / name).read_bytes() == (two / name).read_bytes(), name
    sel = json.loads((two / "selection.json").read_text())
    assert sel["cost"] > 0 and any(v is not None for v in sel["video_scores"].values())
    assert (one / "round_001" / "labels.json").read_bytes() == (
        out / RUN / "round_001" / "labels.json").read_bytes()


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.exit(_worker(sys.argv[2], sys.argv[3], sys.argv[4:]))
