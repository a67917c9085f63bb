"""A claus run with the cluster loss under `torchrun --nproc-per-node 2` (gloo, CPU), killed
twice and resumed, ends with the very files of an uninterrupted two-process run.

The first kill stops both ranks right after round 0's selection is saved (`stop_after`, as a
kill between steps would) and the ranks resume at once; the resumed run then dies hard in the
middle of round 1's training: rank 0 exits right after writing the first epoch's checkpoint
(the cluster loss's online centres are in it) and the launcher tears the group down. A new
launch finishes the run from that checkpoint. Every file must equal the uninterrupted run's,
wall times aside: the selection, the labels, the cluster centres, the weights and optimizer
state of both rounds. Three launches of 5-20 s each on 2 cores.

Each rank runs `run_rounds` through this file (`_worker`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

TIMEOUT = 150  # s per launch; each takes 5-20 s on 2 cores
#: Where rank 0 dies: right after the first epoch's checkpoint of round 1's training.
DIE_AT = "round_001.partial/train/checkpoint.pt"

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or
                                not torch.distributed.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


def run_config():
    from claus.rounds import RunConfig

    # claus with a cluster-loss weight that matters (beta 0.1); two epochs per round so a
    # kill can fall between them.
    return RunConfig(data="synthetic:tiny", strategy="claus", seed=0, init_percent=5,
                     step_percent=5, target_percent=10, passes=2, clusters=3, score_batch=32,
                     videos_per_round=3, beta=0.1,
                     train={"epochs": 2, "min_clips_per_epoch": 16, "batch_size": 2, "T": 8,
                            "lr": 0.003, "device": "cpu"})


# --------------------------------------------------------------------------- the ranks' side
def _worker(run: str, stop: str, die: str) -> int:
    """One rank: `run_rounds` of `run_config()` into `run`. With `stop` ("-": none), first a
    run stopped after that step, then its resume; with `die`, rank 0 exits hard right after
    saving that checkpoint of epoch 1."""
    from claus import training
    from claus.rounds import run_rounds

    rank = int(os.environ.get("RANK", "0"))
    if stop != "-":
        try:
            run_rounds(run, run_config(), progress=False, stop_after=stop)
        except KeyboardInterrupt as stopped:
            Path(f"{run}.stopped{rank}").write_text(str(stopped))
    if die != "-" and rank == 0:
        save = training.atomic_torch_save

        def dying(path, obj):
            save(path, obj)
            if Path(path).match(die) and obj.get("epoch") == 1:
                os._exit(9)

        training.atomic_torch_save = dying
    run_rounds(run, run_config(), progress=False)
    return 0


# --------------------------------------------------------------------------- the test's side
def _launch(out: Path, cache: Path, stop: str = "-", die: str = "-") -> tuple[int, str]:
    """`torchrun --nproc-per-node 2` of `_worker` into `out`: its exit status and the end of
    its log. A failure (unless rank 0 is to die) or a hang (over TIMEOUT s, the process group
    is then killed) fails the test."""
    env = {**os.environ, "CLAUS_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([*filter(None, [os.environ.get("PYTHONPATH")]),
                                          str(Path(__file__).resolve().parents[1] / "python")])}
    env.pop("WORLD_SIZE", None)
    log = out.parent / f"{out.name}.{stop}.{Path(die).name}.log"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", __file__, "--worker", str(out), stop, die]
    from tests.procs import run_group  # here: the ranks run this file as a script

    rc = run_group(cmd, env, log, TIMEOUT)
    if rc != 0 and die == "-":
        pytest.fail(f"exit status {rc}; log:\n" + log.read_text()[-6000:])
    return rc, log.read_text()[-6000:]


@pytest.fixture(scope="module")
def data(cache) -> Path:
    """synthetic:tiny generated once, before any rank asks for it."""
    from claus.data import load_dataset

    load_dataset("synthetic", preset="tiny", cache_dir=cache)
    return cache


def test_two_process_cluster_run_resumed_after_kills_gives_the_same_files(tmp_path, data):
    from tests.rundiff import tree_diff  # here: the ranks run this file as a script

    whole = tmp_path / "whole"
    _launch(whole, data)
    lines = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [x["round"] for x in lines] == [0, 1] and lines[0]["selected_boxes"] > 0
    for r in (0, 1):  # the cluster loss trained both rounds, from the round's centres
        rd = whole / f"round_{r:03d}"
        assert (rd / "centers.pt").is_file()
        epochs = [json.loads(x) for x in (rd / "train" / "metrics.jsonl").read_text().splitlines()]
        assert len(epochs) == 2 and all(e["cluster"] > 0 for e in epochs)

    killed = tmp_path / "killed"
    rc, log = _launch(killed, data, stop="round0:select", die=DIE_AT)
    for rank in (0, 1):
        assert Path(f"{killed}.stopped{rank}").read_text().startswith(
            "stopped after select of round 0")
    # Round 0 resumed after the stop and committed; rank 0 then died in round 1 (status 9).
    assert rc != 0 and (killed / "round_000" / "round.json").is_file(), log
    ckpt = torch.load(killed / DIE_AT, weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["centers"] is not None
    assert not (killed / "round_001.partial" / "model.pt").exists()

    _launch(killed, data)
    diff = tree_diff(killed, whole)
    assert not diff, "\n".join(diff)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.exit(_worker(*sys.argv[2:5]))
