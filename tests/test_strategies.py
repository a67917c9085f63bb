"""Selection strategies: allocation arithmetic, budget spending, determinism, cluster cap."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from claus.selection import (
    STRATEGIES,
    allocate_clusters,
    check_strategy,
    claus_videos,
    default_videos_per_round,
    equidistant_frames,
    select_round,
)
from claus.selection.scoring import FrameScores


def test_largest_remainder_allocation():
    # Shares 5/10, 3/10, 2/10 of 4 slots: quotas 2.0, 1.2, 0.8 → floors 2,1,0, remainder to 0.8.
    assert allocate_clusters([5, 3, 2], 4).tolist() == [2, 1, 1]
    # Quotas 7·(1/3) each: floors 2,2,2 and one extra to the lowest index on a tie.
    assert allocate_clusters([4, 4, 4], 7).tolist() == [3, 2, 2]
    assert allocate_clusters([10, 0, 1], 3).tolist() == [3, 0, 0]
    assert allocate_clusters([0, 0], 3).tolist() == [0, 0]


def test_short_cluster_hands_slots_back():
    # Cluster 1 has 1 video but a quota of 3: it keeps 1, the 2 freed slots go to the others.
    slots = allocate_clusters([3, 1, 2], 5)
    assert slots.tolist()[1] == 1 and slots.sum() == 5 and (slots <= [3, 1, 2]).all()


def test_cluster_cap():
    # 10 labelled (9 in cluster 0) + 4 new = 14; cap 0.7 → cluster 0 may hold ⌊9.8⌋ = 9: no slot.
    slots = allocate_clusters([10, 10], 4, labelled_counts=[9, 1], cap=0.7)
    assert slots.tolist() == [0, 4]
    uncapped = allocate_clusters([10, 10], 4, labelled_counts=[9, 1])
    assert uncapped.tolist() == [2, 2]
    with pytest.raises(ValueError, match="cap"):
        allocate_clusters([1], 1, cap=1.5)


def test_claus_videos_best_per_cluster_and_topup():
    scores = np.array([0.1, 0.9, 0.5, 0.8, 0.7, 0.2])
    clusters = np.array([0, 0, 0, 1, 1, 2])
    # Pool of 6, V = 3: shares 3/6, 2/6, 1/6 → 1.5, 1, 0.5 → 1,1,0 + 1 by remainder (tie 0/2 → 0).
    got = claus_videos(scores, clusters, range(6), 3)
    assert got == [1, 2, 3]
    # Only cluster 0 members in the pool but V = 2 > its slots after a cap: top-up from the rest.
    got = claus_videos(scores, clusters, [0, 1, 5], 3)
    assert sorted(got) == [0, 1, 5]


def test_equidistant_frames():
    assert equidistant_frames(20, set(), 4) == [2, 7, 12, 17]
    got = equidistant_frames(20, {7}, 4)
    assert 7 not in got and len(set(got)) == 4
    assert equidistant_frames(3, {0, 1}, 5) == [2]


def test_default_videos_per_round():
    # 5% of 60 frames at 1 box per frame = 3 boxes per video; 90 boxes → 30 videos.
    assert default_videos_per_round(90, [60] * 100, [1.0] * 100) == 30
    assert default_videos_per_round(90, [60] * 10, [1.0] * 10) == 10


def _pool(n=12, seed=0):
    rng = np.random.default_rng(seed)
    num_frames = [int(x) for x in rng.integers(20, 40, n)]
    costs = [np.maximum(1, rng.integers(0, 3, f)) for f in num_frames]
    L = max(num_frames)
    unc = torch.full((n, L), float("nan"))
    for i, f in enumerate(num_frames):
        unc[i, :f] = torch.from_numpy(rng.random(f).astype(np.float32))
    lengths = torch.tensor(num_frames)
    inside = torch.arange(L)[None] < lengths[:, None]
    scores = FrameScores(uncertainty=unc, entropy=unc.clone(), informative=inside,
                         covered=inside, lengths=lengths)
    names = [f"v{i}" for i in range(n)]
    labelled = [[0, 5] if i < 3 else [] for i in range(n)]
    return dict(names=names, num_frames=num_frames, frame_costs=costs, labelled=labelled,
                scores=scores)


@pytest.mark.parametrize("strategy", ["random", "equidistant", "entropy", "uncertainty", "claus"])
@pytest.mark.parametrize("budget,V", [(23, 4), (7, 3), (40, None)])
def test_budget_spent_exactly_and_deterministic(strategy, budget, V):
    pool = _pool()
    clusters = np.arange(12) % 3
    kw = dict(budget=budget, videos_per_round=V, clusters=clusters, **pool)
    a = select_round(strategy, rng=np.random.default_rng([0, 1]), **kw)
    b = select_round(strategy, rng=np.random.default_rng([0, 1]), **kw)
    assert a.to_json() == b.to_json()
    assert a.cost == budget
    spent = sum(int(pool["frame_costs"][int(n[1:])][f]) for n, fr in a.frames.items()
                for f in fr)
    assert spent == budget
    chosen = {int(n[1:]) for n in a.frames}
    if chosen & {0, 1, 2}:  # partly labelled videos only once every untouched one is taken
        assert chosen >= set(range(3, 12))
    for name, frames in a.frames.items():
        i = int(name[1:])
        assert not set(frames) & set(pool["labelled"][i]), "a labelled frame was picked again"
        assert len(set(frames)) == len(frames)
        assert all(0 <= f < pool["num_frames"][i] for f in frames)
    if V is not None:
        assert len(a.frames) <= V


def test_scored_strategies_follow_the_scores():
    pool = _pool()
    # Make video 7 clearly the most uncertain: it must be chosen first.
    pool["scores"].uncertainty[7, : pool["num_frames"][7]] += 10
    sel = select_round("uncertainty", budget=5, videos_per_round=1,
                       rng=np.random.default_rng(0), **pool)
    assert list(sel.frames) == ["v7"]
    assert all(s is not None and s > 9 for s in sel.scores["v7"])


def test_random_depends_on_the_seed():
    pool = _pool()
    a = select_round("random", budget=20, videos_per_round=4, rng=np.random.default_rng(0), **pool)
    b = select_round("random", budget=20, videos_per_round=4, rng=np.random.default_rng(1), **pool)
    assert a.frames != b.frames


def test_bad_input(caplog):
    pool = _pool()
    with pytest.raises(ValueError, match="unknown strategy 'best'.*random.*claus"):
        select_round("best", budget=5, rng=np.random.default_rng(0), **pool)
    with pytest.raises(ValueError, match="choices"):
        check_strategy("nope")
    with pytest.raises(ValueError, match="needs pool scores"):
        select_round("uncertainty", budget=5, rng=np.random.default_rng(0),
                     **{**pool, "scores": None})
    with pytest.raises(ValueError, match="cluster"):
        select_round("claus", budget=5, rng=np.random.default_rng(0), **pool)
    with pytest.raises(ValueError, match="budget"):
        select_round("random", budget=-1, rng=np.random.default_rng(0), **pool)
    with pytest.raises(ValueError, match="no selection rounds"):
        select_round("full", budget=5, rng=np.random.default_rng(0), **pool)
    # More videos than the pool holds: take all, warn.
    with caplog.at_level(logging.WARNING):
        sel = select_round("random", budget=30, videos_per_round=50,
                           rng=np.random.default_rng(0), **pool)
    assert len(sel.frames) == 12 and "fewer than the 50 requested" in caplog.text
    assert set(STRATEGIES) >= {"random", "equidistant", "entropy", "uncertainty", "claus", "full"}
