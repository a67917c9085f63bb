"""Property-based tests of the selection arithmetic (Hypothesis, derandomized).

The rules under test, as README's Strategies section and `claus.selection.strategies` state
them:
- `allocate_clusters`: V split over the clusters in proportion to their share of the
  unlabelled pool, ⌊V·n_k/N⌋ each and the rest by largest remainder; never more than V in all,
  never more than a cluster's pool videos, never past the cluster cap.
- `claus`: the quotas come from the clusters of the unlabelled pool, not of every video.
- `select_round`: B // V boxes per chosen video, the last takes the remainder; what a video
  cannot spend moves on to the next one, then a final pass spends what is left on the chosen
  videos' best remaining frames, so a round spends exactly B, or warns with the exact shortfall
  when no remaining frame fits.
- The round engine reports the selection of its own round (the last round selects nothing).

Every test runs with `derandomize=True`: the same examples on every run, so CI is repeatable.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from fractions import Fraction

import numpy as np
import pytest
import torch
from claus.selection import allocate_clusters, claus_videos, select_round
from claus.selection.scoring import FrameScores
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROPS = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                 suppress_health_check=[HealthCheck.too_slow])

STRATEGY_LOG = "claus.selection.strategies"


@contextmanager
def captured_warnings():
    """The warnings `claus.selection.strategies` logs inside the block (no pytest fixture:
    Hypothesis runs many examples per test function)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger(STRATEGY_LOG)
    handler, old = Keep(logging.WARNING), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def hamilton(n, V):
    """Largest-remainder split of V over counts n, written from the rule with exact fractions:
    ⌊V·n_k/N⌋ each, one more to the largest remainders (ties: lower index)."""
    N = sum(n)
    if N == 0:
        return [0] * len(n)
    q = [Fraction(V * x, N) for x in n]
    out = [int(x) for x in q]  # floor: the quotas are >= 0
    rem = sorted(range(len(n)), key=lambda k: (-(q[k] - out[k]), k))
    for k in rem[: V - sum(out)]:
        out[k] += 1
    return out


def cap_limit(n, lab, V, cap):
    """Slots each cluster may take: its pool count, and under a cap what keeps it at or below
    ⌊cap·(L + V)⌋ labelled videos (`cap` a float as the caller gives it)."""
    if cap is None:
        return list(n)
    most = int(Fraction(cap) * (sum(lab) + V))  # float cap, exact product, floor
    return [min(x, max(0, most - lb)) for x, lb in zip(n, lab, strict=True)]


# --------------------------------------------------------------------------- allocate_clusters

counts = st.lists(st.integers(0, 12), min_size=1, max_size=6)
caps = st.one_of(st.none(), st.sampled_from([0.2, 0.34, 0.5, 0.54, 0.8, 1.0]))


@PROPS
@given(n=counts, V=st.integers(0, 40))
def test_quotas_are_largest_remainder_of_the_pool_shares(n, V):
    slots = allocate_clusters(n, V)
    assert slots.dtype == np.int64 and slots.shape == (len(n),)
    assert slots.sum() <= V, "more slots than videos to pick"
    assert (slots >= 0).all() and (slots <= n).all(), "a cluster got more slots than videos"
    assert slots.sum() == min(V, sum(n))
    if V <= sum(n):
        # No cluster is clipped by its size (V·n_k/N ≤ n_k): plain largest remainder.
        assert slots.tolist() == hamilton(n, V)
        # Never below the floor of the quota, never above its ceiling.
        for k, x in enumerate(n):
            q = Fraction(V * x, sum(n)) if sum(n) else 0
            assert int(q) <= slots[k] <= int(q) + (q != int(q))
    else:
        assert slots.tolist() == list(n)


@PROPS
@given(data=st.data(), n=counts, V=st.integers(0, 40), cap=caps)
def test_quotas_respect_the_cap_and_hand_back_what_they_cannot_take(data, n, V, cap):
    lab = data.draw(st.lists(st.integers(0, 10), min_size=len(n), max_size=len(n)), "labelled")
    slots = allocate_clusters(n, V, labelled_counts=lab, cap=cap)
    limit = cap_limit(n, lab, V, cap)
    assert (slots >= 0).all() and (slots <= limit).all(), f"limits {limit} broken"
    # Slots a clipped cluster cannot take go to the others while any has room.
    assert slots.sum() == min(V, sum(limit))
    # When nothing needs clipping, the cap changes nothing.
    plain = hamilton(n, V) if V <= sum(n) else list(n)
    if all(p <= m for p, m in zip(plain, limit, strict=True)):
        assert slots.tolist() == plain


def test_rounded_quotas_would_overspend():
    # Quotas 1.5 and 1.5: floors 1 + 1 and one slot by remainder (tie: cluster 0). Rounding the
    # quotas instead of flooring them gives 2 + 2 (and more) for V = 3.
    assert allocate_clusters([3, 3], 3).tolist() == [2, 1]
    assert len(claus_videos(np.arange(6.0), [0, 0, 0, 1, 1, 1], range(6), 3)) == 3
    n = 6
    pool = dict(names=[f"v{i}" for i in range(n)], num_frames=[8] * n,
                frame_costs=[np.ones(8, np.int64)] * n, labelled=[[]] * n,
                clusters=np.array([0, 0, 0, 1, 1, 1]))
    unc = torch.rand(n, 8, generator=torch.Generator().manual_seed(0))
    inside = torch.ones(n, 8, dtype=torch.bool)
    pool["scores"] = FrameScores(uncertainty=unc, entropy=unc.clone(), informative=inside,
                                 covered=inside, lengths=torch.full((n,), 8))
    sel, _ = run_round("claus", pool, 6, 3)
    assert len(sel.clusters) == len(sel.frames) == 3 and sel.cost == 6


def test_equal_remainders_tie_to_the_lower_cluster():
    # Quotas 9·n/45 = 1.4, 2.4, 2.4, 0.4, 2.4: four remainders of exactly 0.4, so the two slots
    # left go to clusters 0 and 1. (In floats 9·7/45 and 9·12/45 leave 0.3999… and cluster 3,
    # with 2 videos, took a slot from cluster 1, with 12.)
    assert allocate_clusters([7, 12, 12, 2, 12], 9).tolist() == [2, 3, 2, 0, 2]


def test_a_cluster_shut_by_the_cap_keeps_its_share_in_the_first_split():
    # Cluster 5 holds 10 of the 11 labelled videos: the cap (0.2 of 25 = 5) shuts it, but its
    # plain quota, 14·1/38 = 0.37, gave it no slot anyway, so the others keep their plain
    # largest-remainder slots [0, 2, 3, 5, 4]. (Dropping it from the shares moved one slot
    # from cluster 1 to cluster 2.)
    slots = allocate_clusters([0, 4, 9, 12, 12, 1], 14, labelled_counts=[0, 0, 0, 0, 1, 10],
                              cap=0.2)
    assert slots.tolist() == [0, 2, 3, 5, 4, 0]


# --------------------------------------------------------------------------- claus_videos


@PROPS
@given(data=st.data(), K=st.integers(1, 4), N=st.integers(1, 14), V=st.integers(1, 16),
       cap=caps)
def test_claus_quotas_follow_the_unlabelled_pool(data, K, N, V, cap):
    clusters = np.array(data.draw(st.lists(st.integers(0, K - 1), min_size=N, max_size=N),
                                  "clusters"))
    in_pool = data.draw(st.lists(st.booleans(), min_size=N, max_size=N), "in pool")
    pool = [i for i in range(N) if in_pool[i]]
    lab = [i for i in range(N) if not in_pool[i]]
    scores = np.array(data.draw(st.permutations(range(N)), "scores"), dtype=np.float64)
    got = claus_videos(scores, clusters, pool, V, clusters[lab], cap, num_clusters=K)
    assert len(got) == len(set(got)) == min(V, len(pool))
    assert set(got) <= set(pool)
    n = np.bincount(clusters[pool], minlength=K).tolist()
    lab_n = np.bincount(clusters[lab], minlength=K).tolist()
    slots = allocate_clusters(n, V, lab_n, cap)
    per_cluster = np.bincount(clusters[got], minlength=K) if got else np.zeros(K, np.int64)
    if slots.sum() == min(V, len(pool)):
        # Every slot filled by the allocation itself: exactly the pool's quotas, the cap held.
        assert per_cluster.tolist() == slots.tolist()
        assert (per_cluster <= cap_limit(n, lab_n, V, cap)).all()
    else:
        assert (per_cluster >= slots).all()
    # Inside a cluster, its best videos (top-ups too take the best remaining).
    for k in range(K):
        members = sorted((i for i in pool if clusters[i] == k), key=lambda i: -scores[i])
        mine = {i for i in got if clusters[i] == k}
        assert mine == set(members[: len(mine)])


def test_claus_quotas_ignore_the_labelled_videos_clusters():
    # Cluster 0: 6 videos, 5 labelled; cluster 1: 6 videos, none labelled. The pool's shares
    # 1/7 and 6/7 of V = 3 give 0.43 and 2.57: slots 0 and 3. Counting every video (6 and 6)
    # would give cluster 0, the one already labelled, 2 of the 3.
    clusters = np.array([0] * 6 + [1] * 6)
    pool = [5, *range(6, 12)]
    scores = np.linspace(1, 0, 12)
    got = claus_videos(scores, clusters, pool, 3, clusters[:5])
    assert sorted(got) == [6, 7, 8]


# --------------------------------------------------------------------------- select_round


@st.composite
def pools(draw, max_videos=9, costly=True):
    """A pool of short videos, some partly (or fully) labelled, with frame costs and scores."""
    N = draw(st.integers(1, max_videos), "N")
    num_frames = draw(st.lists(st.integers(1, 10), min_size=N, max_size=N), "frames")
    labelled = []
    for i, f in enumerate(num_frames):
        kind = draw(st.sampled_from(["none", "none", "some", "all"]), f"labelled {i}")
        if kind == "none":
            labelled.append([])
        elif kind == "all":
            labelled.append(list(range(f)))
        else:
            labelled.append(sorted(draw(st.sets(st.integers(0, f - 1), min_size=1), f"lab {i}")))
    top = 3 if costly and draw(st.booleans(), "costly") else 1
    costs = [np.array(draw(st.lists(st.integers(1, top), min_size=f, max_size=f), f"cost {i}"),
                      dtype=np.int64) for i, f in enumerate(num_frames)]
    seed = draw(st.integers(0, 2**16), "score seed")
    rng = np.random.default_rng(seed)
    L = max(num_frames)
    unc = torch.full((N, L), float("nan"))
    informative = torch.zeros(N, L, dtype=torch.bool)
    for i, f in enumerate(num_frames):
        unc[i, :f] = torch.from_numpy(rng.random(f).astype(np.float32))
        informative[i, :f] = torch.from_numpy(rng.random(f) < 0.8)  # some frames not informative
    lengths = torch.tensor(num_frames)
    covered = torch.arange(L)[None] < lengths[:, None]
    scores = FrameScores(uncertainty=unc, entropy=unc.clone(), informative=informative,
                         covered=covered, lengths=lengths)
    K = draw(st.integers(1, 3), "K")
    clusters = np.array(draw(st.lists(st.integers(0, K - 1), min_size=N, max_size=N), "clusters"))
    return dict(names=[f"v{i}" for i in range(N)], num_frames=num_frames, frame_costs=costs,
                labelled=labelled, scores=scores, clusters=clusters)


def run_round(strategy, pool, budget, V, cap=None, seed=0):
    with captured_warnings() as records:
        sel = select_round(strategy, budget=budget, videos_per_round=V, cluster_cap=cap,
                           rng=np.random.default_rng(seed), **pool)
    return sel, [r.getMessage() for r in records]


def free_frames(pool, i):
    lab = set(pool["labelled"][i])
    return [f for f in range(pool["num_frames"][i]) if f not in lab]


@PROPS
@given(pool=pools(), budget=st.integers(0, 45), V=st.integers(1, 11),
       strategy=st.sampled_from(["random", "equidistant", "entropy", "uncertainty", "claus"]),
       cap=caps)
def test_every_round_spends_its_budget_or_warns_the_exact_shortfall(pool, budget, V, strategy,
                                                                    cap):
    sel, warnings = run_round(strategy, pool, budget, V, cap)
    costs = pool["frame_costs"]
    index = {n: i for i, n in enumerate(pool["names"])}
    spent = 0
    for name, frames in sel.frames.items():
        i = index[name]
        assert frames, "a video with no frame is listed"
        assert len(set(frames)) == len(frames), "a frame picked twice"
        assert set(frames) <= set(free_frames(pool, i)), "a labelled or absent frame picked"
        assert len(sel.scores[name]) == len(frames)
        spent += int(sum(costs[i][f] for f in frames))
    assert sel.cost == spent
    assert spent <= budget, "overspent"
    unspent = [w for w in warnings if "boxes unspent" in w]
    if spent == budget:
        assert not unspent
    else:
        # The exact shortfall, and no remaining frame of a chosen video would have fitted it.
        assert len(unspent) == 1 and unspent[0].endswith(
            f": {budget - spent} of {budget} boxes unspent")
        chosen = set(sel.frames) | set(sel.clusters)
        for name in chosen:
            i = index[name]
            rest = set(free_frames(pool, i)) - set(sel.frames.get(name, []))
            assert all(costs[i][f] > budget - spent for f in rest), \
                f"{name} still had a frame that fits the {budget - spent} unspent boxes"
    # Videos: at most V; partly labelled ones only when fewer than V are untouched (then all
    # of those are taken, though one may get no box when B < V).
    touched = {i for i in range(len(pool["names"])) if pool["labelled"][i]}
    untouched = len(pool["names"]) - len(touched)
    chosen_idx = {index[n] for n in set(sel.frames) | set(sel.clusters)}
    assert len(chosen_idx) <= V
    if chosen_idx & touched:
        assert untouched < V
        assert any(f"the pool has {untouched} unlabelled videos, fewer than the {V} requested"
                   in w for w in warnings)


def expected_spend(capacity, budget):
    """Boxes per chosen video (in choice order) when every frame costs 1: B // V each, the last
    takes the remainder, what a video cannot spend moves to the next, then a final pass over the
    chosen videos in order spends what is still left. Returns (per video, unspent)."""
    V = len(capacity)
    base, rem = divmod(budget, V)
    spend, carry = [], 0
    for j, cap in enumerate(capacity):
        quota = base + (rem if j == V - 1 else 0) + carry
        spend.append(min(cap, quota))
        carry = quota - spend[-1]
    for j, cap in enumerate(capacity):
        extra = min(cap - spend[j], carry)
        spend[j] += extra
        carry -= extra
    return spend, carry


@PROPS
@given(data=st.data(), pool=pools(costly=False), budget=st.integers(0, 45), cap=caps)
def test_budget_split_per_video_remainder_last_and_carried(data, pool, budget, cap):
    untouched = [i for i in range(len(pool["names"])) if not pool["labelled"][i]]
    if not untouched:
        return
    V = data.draw(st.integers(1, len(untouched)), "V")
    sel, warnings = run_round("claus", pool, budget, V, cap)
    if budget == 0:
        assert sel.frames == {} and sel.cost == 0
        return
    # claus lists every chosen video in `clusters`, in the order the budget visits them.
    chosen = list(sel.clusters)
    assert len(chosen) == V
    index = {n: i for i, n in enumerate(pool["names"])}
    capacity = [len(free_frames(pool, index[n])) for n in chosen]
    want, unspent = expected_spend(capacity, budget)
    got = [len(sel.frames.get(n, [])) for n in chosen]
    assert got == want, f"capacities {capacity}, budget {budget}"
    assert sel.cost == budget - unspent
    assert any(f"{unspent} of {budget} boxes unspent" in w for w in warnings) == (unspent > 0)


@settings(PROPS, max_examples=100)
@given(data=st.data(), pool=pools(max_videos=12, costly=False), budget=st.integers(1, 45),
       cap=caps)
def test_claus_round_quotas_follow_the_unlabelled_pool(data, pool, budget, cap):
    N = len(pool["names"])
    untouched = [i for i in range(N) if not pool["labelled"][i]]
    lab = [i for i in range(N) if pool["labelled"][i]]
    if not untouched:
        return  # the top-up path: no clusters
    V = data.draw(st.integers(1, len(untouched)), "V")
    sel, _ = run_round("claus", pool, budget, V, cap)
    cl = pool["clusters"]
    K = int(cl.max()) + 1
    n = np.bincount(cl[untouched], minlength=K).tolist()
    lab_n = np.bincount(cl[lab], minlength=K).tolist()
    slots = allocate_clusters(n, V, lab_n, cap)
    got = np.bincount([int(c) for c in sel.clusters.values()], minlength=K)
    assert {int(n_[1:]) for n_ in sel.clusters} <= set(untouched)
    assert got.sum() == V
    if slots.sum() == V:
        assert got.tolist() == slots.tolist()
        assert (got <= cap_limit(n, lab_n, V, cap)).all()
    else:
        assert (got >= slots).all()  # the slots no cluster could take went to the best videos


def test_what_a_video_cannot_spend_moves_on():
    # Budget 31 over V = 3: 10, 10, 11. Video a has 4 free frames: 6 move on to b (16 boxes),
    # b has 20 and takes them, c its 11. Nothing is left unspent.
    names = ["a", "b", "c", "d"]
    num_frames = [4, 20, 20, 20]
    pool = dict(names=names, num_frames=num_frames,
                frame_costs=[np.ones(f, np.int64) for f in num_frames],
                labelled=[[], [], [], []], clusters=np.zeros(4, np.int64))
    unc = torch.zeros(4, 20)
    unc[0] = 4.0  # a first, then b, c, d
    unc[1], unc[2], unc[3] = 3.0, 2.0, 1.0
    lengths = torch.tensor(num_frames)
    inside = torch.arange(20)[None] < lengths[:, None]
    pool["scores"] = FrameScores(uncertainty=unc, entropy=unc.clone(), informative=inside,
                                 covered=inside, lengths=lengths)
    sel, warnings = run_round("uncertainty", pool, 31, 3)
    assert sel.cost == 31 and not warnings
    assert {n: len(f) for n, f in sel.frames.items()} == {"a": 4, "b": 16, "c": 11}


# --------------------------------------------------------------------------- the round engine


def test_round_metrics_report_their_own_selection(tmp_path):
    """Each metrics line reports the selection its round made; the last round selects nothing
    and reports 0 (not the previous round's selection)."""
    from claus.data import load_dataset
    from claus.models import build_model
    from claus.rounds import RunConfig, Trainer, run_rounds

    ds = load_dataset("synthetic", preset="tiny", cache_dir=tmp_path / "synthetic")
    trainer = Trainer(fit=lambda *a, **k: build_model("tiny", ds.num_classes),
                      evaluate=lambda *a, **k: {"f-mAP@0.5": 1.0},
                      geometry=lambda t: {"T": 8, "stride": 2, "size": None, "device": "cpu"})
    cfg = RunConfig(data="synthetic:tiny", strategy="random", seed=2, init_percent=5,
                    step_percent=5, target_percent=15, videos_per_round=3)
    run = tmp_path / "run"
    lines = run_rounds(run, cfg, trainer=trainer, dataset=ds, progress=False)
    assert len(lines) == 3
    for r, line in enumerate(lines[:-1]):
        sel = json.loads((run / f"round_{r:03d}" / "selection.json").read_text())
        assert line["selected_videos"] == len(sel["frames"]) > 0
        assert line["selected_boxes"] == sel["cost"] > 0
        assert lines[r + 1]["labelled_boxes"] == line["labelled_boxes"] + line["selected_boxes"]
    assert not (run / "round_002" / "selection.json").exists()
    assert lines[-1]["selected_videos"] == 0 and lines[-1]["selected_boxes"] == 0
    on_disk = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["selected_boxes"] for x in on_disk] == [x["selected_boxes"] for x in lines]


@pytest.mark.parametrize("budget,V,want", [(7, 3, [2, 2, 3]), (2, 3, [0, 0, 2])])
def test_remainder_goes_to_the_last_video(budget, V, want):
    num_frames = [10] * 4
    pool = dict(names=list("abcd"), num_frames=num_frames,
                frame_costs=[np.ones(10, np.int64)] * 4, labelled=[[]] * 4,
                clusters=np.array([0, 0, 1, 1]))
    unc = torch.tensor([[4.0] * 10, [3.0] * 10, [2.0] * 10, [1.0] * 10])
    inside = torch.ones(4, 10, dtype=torch.bool)
    pool["scores"] = FrameScores(uncertainty=unc, entropy=unc.clone(), informative=inside,
                                 covered=inside, lengths=torch.tensor(num_frames))
    sel, _ = run_round("uncertainty", pool, budget, V)
    assert [len(sel.frames.get(n, [])) for n in "abc"] == want
