"""Selection strategies: which videos, and which frames in them, to label in one round.

Every strategy answers the same question: given the pool (the training split's videos, some of
them partly labelled), a round budget in ground-truth boxes and V videos to pick, which frames
should the oracle label? Each strategy is an object (`claus.selection.base.Strategy`,
registered by name in `STRATEGIES`); they differ in how videos are ranked and how frames are
ordered, and `select_round` spends the budget along their orders the same way for all:

| strategy      | videos                                   | frames                          |
|---------------|------------------------------------------|---------------------------------|
| `random`      | random unlabelled videos                 | random                          |
| `equidistant` | random unlabelled videos                 | equally spaced                  |
| `entropy`     | mean of top-t frame entropies            | greedy suppression on entropy   |
| `uncertainty` | mean of top-t MC-dropout uncertainties   | greedy suppression on U         |
| `claus`       | as `uncertainty`, split over clusters    | greedy suppression on U         |
| `full`        | everything (the upper bound; no rounds)  | every frame                     |

No foreground: the scored strategies rank a video by the frames its model sees an actor on.
A video with no such frame (a model that predicts no foreground there, early or on unusual
footage) has no score: it ranks after every scored video, in a random order drawn from the
round's generator, and its frames are chosen equally spaced as `equidistant` chooses them (not
frames 0, 1, 2, ...); a warning says how many candidate videos had no foreground.

Budget arithmetic (`_spend`): the round's box budget B is split over the V chosen videos,
B // V boxes each and the last takes the remainder; a frame costs its number of boxes (at
least 1, `claus.data.frame_cost`). Frames are taken in the strategy's order while they fit the
video's quota; what a video cannot spend (too few unlabelled frames) moves on to the next, and
a final pass spends what is still left on the best remaining frames of the chosen videos, so a
round spends its whole budget whenever the pool allows it.

All randomness comes from a `numpy.random.Generator` derived from the run's seed and the round.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .base import (
    STRATEGIES,
    FrameOrder,
    Pool,
    Strategy,
    VideoChoice,
    check_strategy,
    equidistant_frames,
    get_strategy,
    register_strategy,
)

if TYPE_CHECKING:
    from .scoring import FrameScores

__all__ = [
    "CLAUS_BETA",
    "STRATEGIES",
    "Claus",
    "Entropy",
    "Equidistant",
    "Full",
    "Random",
    "Scored",
    "Selection",
    "Uncertainty",
    "allocate_clusters",
    "check_strategy",
    "claus_videos",
    "default_videos_per_round",
    "equidistant_frames",
    "rank_by_score",
    "select_round",
]

log = logging.getLogger(__name__)

#: Cluster-loss weight of `claus` when the run does not set `beta`: the loss (beta/2 · mean
#: squared distance to the centre) then stays about 1/20 of the detection losses at the
#: embedding spread the tiny detector reaches on the demo (mean squared distance ≈ 12).
CLAUS_BETA = 0.01


@dataclass
class Selection:
    """One round's choice.

    frames: {video name: [0-based frames, in pick order]}. scores: {video name: [score of each
    pick, or None for unscored strategies]}. video_scores: {video name: ranking score or None}.
    clusters: {video name: cluster} for `claus` (empty otherwise). cost: boxes the frames cost.
    """

    frames: dict[str, list[int]] = field(default_factory=dict)
    scores: dict[str, list[float | None]] = field(default_factory=dict)
    video_scores: dict[str, float | None] = field(default_factory=dict)
    clusters: dict[str, int] = field(default_factory=dict)
    cost: int = 0

    def to_json(self) -> dict:
        return {"frames": self.frames, "scores": self.scores, "video_scores": self.video_scores,
                "clusters": self.clusters, "cost": self.cost}

    @classmethod
    def from_json(cls, d: dict) -> Selection:
        return cls(frames={k: [int(f) for f in v] for k, v in d["frames"].items()},
                   scores=d.get("scores", {}), video_scores=d.get("video_scores", {}),
                   clusters={k: int(c) for k, c in d.get("clusters", {}).items()},
                   cost=int(d.get("cost", 0)))


def default_videos_per_round(budget: int, num_frames: Sequence[int], frame_costs: Sequence[float],
                             share: float = 0.05) -> int:
    """V such that each chosen video gets about `share` of its frames (the paper's 5%).

    Args:
        budget: the round's boxes (>= 0).
        num_frames: frames of each pool video.
        frame_costs: mean box cost of a frame of each pool video (>= 1 each).
        share: fraction of a video's frames one round labels.
    Returns:
        max(1, round(budget / (share · mean frames · mean frame cost))), at most the pool size.
    """
    if not num_frames:
        return 0
    per_video = max(1.0, share * float(np.mean(num_frames)) * float(np.mean(frame_costs)))
    return int(min(len(num_frames), max(1, round(budget / per_video))))


def allocate_clusters(pool_counts: Sequence[int], V: int, labelled_counts: Sequence[int] | None
                      = None, cap: float | None = None) -> np.ndarray:
    """Slots per cluster: V split in proportion to each cluster's share of the unlabelled pool.

    Largest-remainder rounding (Hamilton): every cluster gets ⌊V·n_k/N⌋, the slots left go to
    the largest fractional parts (ties: lower cluster index). A cluster never gets more slots
    than it has pool videos. With `cap`, no cluster may end up holding more than `cap` of all
    labelled videos after the round: a cluster's slots are cut to
    max(0, ⌊cap·(L + V)⌋ - labelled_k) and the freed slots go, by the same rule, to the others.
    Slots no cluster can take are dropped (the caller hands them to the best remaining videos).

    Args:
        pool_counts: (K,) unlabelled videos per cluster.
        V: videos to pick (>= 0).
        labelled_counts: (K,) labelled videos per cluster (needed with `cap`).
        cap: in (0, 1], the largest share of labelled videos one cluster may hold; None: no cap.
    Returns:
        (K,) int64 slots, summing to at most V.
    """
    n = np.asarray(pool_counts, dtype=np.int64)
    if n.ndim != 1 or (n < 0).any():
        raise ValueError(f"pool_counts must be a 1-D list of counts >= 0, got {pool_counts}")
    if V < 0:
        raise ValueError(f"V must be >= 0, got {V}")
    if cap is not None and not 0 < cap <= 1:
        raise ValueError(f"cap must be in (0, 1], got {cap}")
    K = n.shape[0]
    limit = n.copy()
    if cap is not None:
        lab = np.zeros(K, np.int64) if labelled_counts is None else np.asarray(labelled_counts,
                                                                               np.int64)
        if lab.shape != (K,):
            raise ValueError(f"labelled_counts must have {K} entries, got {lab.shape}")
        total = int(lab.sum()) + V
        limit = np.minimum(limit, np.maximum(0, math.floor(cap * total) - lab))
    slots = np.zeros(K, np.int64)
    left = min(V, int(limit.sum()))
    # The first split is over every cluster's share of the pool (a cluster the cap shuts from
    # the start still counts: leaving it out would move the others' quotas even where it frees
    # nothing); then the clusters clipped by their size or cap hand their excess back to those
    # that still have room, in proportion to their shares, until no slot is left. Every pass
    # after the first places at least one slot.
    open_ = n > 0
    while left > 0:
        weights = np.where(open_, n, 0)
        total = int(weights.sum())
        if total == 0:
            break
        # Integer arithmetic: quota_k = left·w_k / total, floor and remainder exact, so equal
        # remainders tie as documented (in floats 9·7/45 and 9·2/45 leave 0.3999… and 0.4).
        add = left * weights // total
        rem = left * weights - add * total
        extra = left - int(add.sum())
        order = sorted(np.flatnonzero(open_), key=lambda k: (-rem[k], k))
        for k in order[:extra]:
            add[k] += 1
        add = np.minimum(add, limit - slots)
        slots += add
        left -= int(add.sum())
        open_ = slots < limit
    return slots


def rank_by_score(scores: np.ndarray, candidates: Sequence[int]) -> list[int]:
    """Candidates sorted by descending score (NaN last; ties by index, so deterministic)."""
    s = np.asarray(scores, dtype=np.float64)
    return sorted(candidates, key=lambda i: (math.isnan(s[i]), -s[i] if not math.isnan(s[i])
                                             else 0.0, i))


def claus_videos(video_scores: np.ndarray, clusters: np.ndarray, pool: Sequence[int], V: int,
                 labelled_clusters: np.ndarray | None = None, cap: float | None = None,
                 num_clusters: int | None = None) -> list[int]:
    """Cluster-aware choice of V pool videos.

    Slots per cluster from `allocate_clusters`; each cluster gives its highest-scoring videos;
    slots a cluster cannot fill go to the best remaining pool videos (over all clusters, still
    respecting the cap where possible).

    Args:
        video_scores: (N,) score of every video (index space of `pool`/`clusters`).
        clusters: (N,) int cluster of every video.
        pool: candidate video indices.
        V: videos to pick.
        labelled_clusters: clusters of the already labelled videos (for the cap).
        cap: see `allocate_clusters`.
        num_clusters: K (default: 1 + the largest cluster index seen).
    Returns:
        the chosen indices, in the order they were chosen (cluster by cluster, then top-ups).
    """
    clusters = np.asarray(clusters, np.int64)
    lab = np.asarray([] if labelled_clusters is None else labelled_clusters, np.int64)
    K = num_clusters or int(max(clusters.max(initial=-1), lab.max(initial=-1)) + 1)
    pool = list(pool)
    counts = np.bincount(clusters[pool], minlength=K) if pool else np.zeros(K, np.int64)
    slots = allocate_clusters(counts, V, np.bincount(lab, minlength=K), cap)
    chosen: list[int] = []
    for k in range(K):
        members = [i for i in pool if clusters[i] == k]
        chosen += rank_by_score(video_scores, members)[: int(slots[k])]
    if len(chosen) < min(V, len(pool)):
        taken = set(chosen)
        rest = rank_by_score(video_scores, [i for i in pool if i not in taken])
        chosen += rest[: min(V, len(pool)) - len(chosen)]
    return chosen


def _take(order: Sequence[int], costs: np.ndarray, quota: int, taken: set[int]) -> list[int]:
    """Frames of `order` (not in `taken`) whose cumulative cost fits `quota`; a frame too
    expensive for what is left is skipped so a cheaper later one can still use it."""
    out, left = [], quota
    for f in order:
        if left <= 0:
            break
        if f in taken:
            continue
        c = int(costs[f])
        if c <= left:
            out.append(int(f))
            taken.add(int(f))
            left -= c
    return out


def select_round(
    strategy: str | Strategy,
    *,
    names: Sequence[str],
    num_frames: Sequence[int],
    frame_costs: Sequence[np.ndarray],
    labelled: Sequence[Sequence[int]],
    budget: int,
    videos_per_round: int | None = None,
    rng: np.random.Generator,
    scores: FrameScores | None = None,
    clusters: np.ndarray | None = None,
    cluster_cap: float | None = None,
    top_t: int | None = None,
    sigma: float = 8 / 3,
    radius: int = 4,
) -> Selection:
    """Choose one round's frames: the strategy picks videos and orders their frames, the budget
    is spent along those orders (the same arithmetic for every strategy, `_spend`).

    Args:
        strategy: a registered strategy's name (`STRATEGIES`) or a `Strategy`; not `full`
            (which has no rounds).
        names: (N,) names of the training videos (the index space of every other argument).
        num_frames: (N,) frames per video.
        frame_costs: N arrays (num_frames,) of int box cost per frame (>= 1).
        labelled: N lists of already labelled frames.
        budget: boxes to spend this round (>= 0).
        videos_per_round: V; None picks `default_videos_per_round`.
        rng: the round's generator (derive it from the run seed and the round).
        scores: `FrameScores` of all N videos (required by strategies with a `score`).
        clusters: (N,) int cluster of every video (required by strategies that cluster).
        cluster_cap: optional largest share of labelled videos in one cluster (claus).
        top_t: videos are ranked by the mean of their top-t frame scores; None: the frames per
            video this round (≈ 5% of a video).
        sigma, radius: the proximity penalty and suppression reach of `select_frames`.
    Returns:
        the `Selection`; its cost equals `budget` unless the pool has too few frames.
    """
    strat = _check_round(strategy, names, num_frames, frame_costs, labelled, budget, scores,
                         clusters)
    lab_sets = [set(int(f) for f in fr) for fr in labelled]
    candidates, untouched, V = _pool(budget, num_frames, frame_costs, lab_sets, videos_per_round)
    if budget == 0 or V == 0:
        if budget:
            log.warning("no training video has an unlabelled frame left: %d of %d boxes unspent",
                        budget, budget)
        return Selection()
    # Frames a video is likely to get this round: what the top-t ranking and greedy use.
    mean_cost = float(np.mean([np.mean(c) for c in frame_costs]))
    per_video = max(1, round(budget / V / mean_cost))
    pool = Pool(names=names, num_frames=num_frames, frame_costs=frame_costs, labelled=lab_sets,
                candidates=candidates, untouched=untouched, V=V, per_video=per_video,
                top_t=top_t or per_video, scores=scores,
                clusters=None if clusters is None else np.asarray(clusters, np.int64),
                cluster_cap=cluster_cap, sigma=sigma, radius=radius)
    choice = strat.choose_videos(pool, rng)
    orders = strat.order_frames(pool, choice.videos, rng)
    picked = _spend(choice.videos, {i: o.frames for i, o in orders.items()}, frame_costs,
                    budget, V)
    return _selection(pool, choice, orders, picked)


def _selection(pool: Pool, choice: VideoChoice, orders: dict[int, FrameOrder],
               picked: dict[int, list[int]]) -> Selection:
    """The `Selection` of the picked frames: each with its score where the order has one."""
    sel = Selection(clusters={pool.names[i]: int(c) for i, c in choice.clusters.items()})
    for i in choice.videos:
        if not picked[i]:
            continue
        name = pool.names[i]
        sel.frames[name] = picked[i]
        pos = {f: p for p, f in enumerate(orders[i].frames)}
        ps = orders[i].scores
        sel.scores[name] = [ps[pos[f]] if ps is not None and pos[f] < len(ps) else None
                            for f in picked[i]]
        sel.video_scores[name] = choice.scores.get(i)
        sel.cost += int(sum(pool.frame_costs[i][f] for f in picked[i]))
    return sel


def _check_round(strategy: str | Strategy, names: Sequence[str], num_frames: Sequence[int],
                 frame_costs: Sequence[np.ndarray], labelled: Sequence[Sequence[int]],
                 budget: int, scores: FrameScores | None, clusters: np.ndarray | None
                 ) -> Strategy:
    """Refuse what `select_round` cannot work with; returns the strategy object."""
    strat = get_strategy(strategy)
    if not strat.selects:
        raise ValueError(f"strategy {strat.name!r} labels everything at once and has no "
                         "selection rounds")
    N = len(names)
    if not (len(num_frames) == len(frame_costs) == len(labelled) == N):
        raise ValueError("names, num_frames, frame_costs and labelled must have the same length")
    if budget < 0:
        raise ValueError(f"budget must be >= 0 boxes, got {budget}")
    if strat.score is not None and scores is None:
        raise ValueError(f"strategy {strat.name!r} needs pool scores")
    if strat.clusters and clusters is None:
        raise ValueError(f"strategy {strat.name!r} needs the cluster of every video")
    return strat


def _pool(budget: int, num_frames: Sequence[int], frame_costs: Sequence[np.ndarray],
          lab_sets: list[set[int]], videos_per_round: int | None
          ) -> tuple[list[int], list[int], int]:
    """(pool, untouched, V): the candidate videos, those that must go first when the pool had
    to be topped up with partly labelled videos, and the number of videos to choose."""
    N = len(lab_sets)
    pool = [i for i in range(N) if not lab_sets[i]]
    untouched: list[int] = []
    V = (default_videos_per_round(budget, list(num_frames),
                                  [float(np.mean(c)) for c in frame_costs])
         if videos_per_round is None else int(videos_per_round))
    if V < 1:
        raise ValueError(f"videos_per_round must be >= 1, got {V}")
    if V > len(pool):
        # Too few untouched videos: take them all, then partly labelled videos that still have
        # free frames, so the round can spend its budget.
        partly = [i for i in range(N) if lab_sets[i] and len(lab_sets[i]) < num_frames[i]]
        log.warning("the pool has %d unlabelled videos, fewer than the %d requested: taking all"
                    "%s", len(pool), V, f" and up to {V - len(pool)} partly labelled ones"
                    if partly else "")
        untouched, pool = pool, partly
        V = min(V, len(untouched) + len(partly))
    return pool, untouched, V


# ---------------------------------------------------------------------------- the strategies
@register_strategy
class Random(Strategy):
    """Random unlabelled videos, random frames."""

    name = "random"
    description = "random unlabelled videos, random frames"

    def frame_order(self, pool: Pool, i: int, rng: np.random.Generator) -> FrameOrder:
        return FrameOrder([int(f) for f in rng.permutation(pool.free_frames(i))])


@register_strategy
class Equidistant(Strategy):
    """Random unlabelled videos, equally spaced frames (the `Strategy` defaults)."""

    name = "equidistant"
    description = "random unlabelled videos, equally spaced frames"


class Scored(Strategy):
    """Videos ranked by the mean of their top-t greedy frame picks on `score`, frames in greedy
    order (redundancy-aware: `select_frames`), then the frames the greedy never reaches
    (non-informative) in time order.

    No-foreground fallback: a candidate video with no informative frame (the model predicts
    no foreground on it, so nothing to score) ranks after every scored video, in a random order
    drawn from the round's generator, and its frames are chosen as `equidistant` chooses them;
    one warning says how many candidate videos had no foreground.
    """

    score = "uncertainty"

    def greedy(self, pool: Pool, k: int):
        """`select_frames` of the pool's scores on this strategy's criterion: k picks per
        video (a `FrameSelection`)."""
        # Imported here: the scores are torch tensors, but the registry of strategies (read by
        # every configuration) must load without torch.
        from .scoring import select_frames

        return select_frames(pool.scores, pool.labelled_mask, k, criterion=self.score,
                             sigma=pool.sigma, radius=pool.radius)

    def choose_videos(self, pool: Pool, rng: np.random.Generator) -> VideoChoice:
        # Video ranking: mean of the top-t greedy picks (select_frames' video score).
        ranked = self.greedy(pool, pool.top_t)
        vs = ranked.video_score.cpu().numpy().astype(np.float64)
        rank = _no_foreground_ranks(vs, pool.untouched + pool.candidates, pool.num_frames,
                                    pool.labelled, rng)
        choice = self.pick(pool, rank)
        choice.scores = {i: None if math.isnan(vs[i]) else float(vs[i]) for i in choice.videos}
        return choice

    def pick(self, pool: Pool, rank: np.ndarray) -> VideoChoice:
        """The videos by their ranking scores `rank` (N,): the untouched ones, then the best
        candidates."""
        ranked = rank_by_score(rank, pool.candidates)
        return VideoChoice(pool.untouched + ranked[: pool.V - len(pool.untouched)])

    def order_frames(self, pool: Pool, videos: list[int],
                     rng: np.random.Generator) -> dict[int, FrameOrder]:
        # The greedy, long enough to spend any quota.
        longest = max(pool.num_frames[i] for i in videos)
        full = self.greedy(pool, longest)
        fr, sc = full.frames.cpu().numpy(), full.scores.cpu().numpy()
        out: dict[int, FrameOrder] = {}
        for i in videos:
            keep = fr[i] >= 0
            if not keep.any() and len(pool.labelled[i]) < pool.num_frames[i]:
                out[i] = Strategy.frame_order(self, pool, i, rng)  # no foreground: spaced
                continue
            order = [int(f) for f in fr[i][keep]]
            # Frames the greedy never reaches (non-informative): last, in time order, so a
            # large quota can still be spent.
            seen = set(order)
            order += [f for f in range(pool.num_frames[i])
                      if f not in seen and f not in pool.labelled[i]]
            out[i] = FrameOrder(order, [float(x) for x in sc[i][keep]])
        return out


@register_strategy
class Entropy(Scored):
    """Videos and frames by the mean pixel entropy of one deterministic prediction."""

    name = "entropy"
    description = "videos and frames by the mean pixel entropy of the deterministic prediction"
    score = "entropy"
    scoring = "deterministic"


@register_strategy
class Uncertainty(Scored):
    """Videos and frames by MC-dropout uncertainty, redundancy-aware; no clusters."""

    name = "uncertainty"
    description = "videos and frames by MC-dropout uncertainty, redundancy-aware; no clusters"


@register_strategy
class Claus(Scored):
    """As `uncertainty`, with the videos split over clusters of the video embeddings
    (`claus_videos`) and the cluster loss in training (`RunConfig.beta`)."""

    name = "claus"
    description = "uncertainty + cluster-aware video choice (cluster-proportional allocation)"
    clusters = True

    def training(self, cfg):
        """The run's training with its seed and the cluster loss (`cfg.beta`, default
        `CLAUS_BETA`)."""
        beta = CLAUS_BETA if cfg.beta is None else float(cfg.beta)
        return cfg.train.replace(seed=int(cfg.seed), beta=beta)

    def pick(self, pool: Pool, rank: np.ndarray) -> VideoChoice:
        if pool.untouched:  # topping up with partly labelled videos: no cluster split
            return super().pick(pool, rank)
        lab_vids = [i for i in range(len(pool.names)) if pool.labelled[i]]
        cl = pool.clusters
        chosen = claus_videos(rank, cl, pool.candidates, pool.V, cl[lab_vids], pool.cluster_cap)
        return VideoChoice(chosen, clusters={i: int(cl[i]) for i in chosen})


@register_strategy
class Full(Strategy):
    """Every frame labelled: the upper bound, one round, no selection."""

    name = "full"
    description = "every frame labelled (the upper bound; no selection rounds)"
    selects = False


def _no_foreground_ranks(vs: np.ndarray, candidates: list[int], num_frames: Sequence[int],
                         lab_sets: list[set[int]], rng: np.random.Generator) -> np.ndarray:
    """Video scores to rank by: `vs`, with the candidates that have no score (no informative
    unlabelled frame) given distinct values below every score (all >= 0) in a random order
    from `rng`. `vs` comes back unchanged, and `rng` untouched, when every candidate has one."""
    blind = [i for i in candidates if math.isnan(vs[i]) and len(lab_sets[i]) < num_frames[i]]
    if not blind:
        return vs
    log.warning("%d of the %d candidate videos show no foreground to the model (no frame it "
                "can score): they rank after the scored videos in a seeded random order and "
                "their frames are chosen equally spaced (the equidistant strategy's order)",
                len(blind), len(candidates))
    out = vs.copy()
    out[blind] = -1.0 - rng.permutation(len(blind)).astype(np.float64)
    return out


def _spend(chosen: list[int], order: dict[int, list[int]], frame_costs: Sequence[np.ndarray],
           budget: int, V: int) -> dict[int, list[int]]:
    """Frames taken per chosen video: B // V boxes each (the last the remainder), what a video
    cannot spend moving on to the next, then a final pass over the chosen videos' best
    remaining frames."""
    taken: dict[int, set[int]] = {i: set() for i in chosen}
    picked: dict[int, list[int]] = {i: [] for i in chosen}
    carry = 0
    for j, i in enumerate(chosen):
        quota = budget // V + (budget - (budget // V) * V if j == len(chosen) - 1 else 0) + carry
        got = _take(order[i], frame_costs[i], quota, taken[i])
        picked[i] += got
        carry = quota - int(sum(frame_costs[i][f] for f in got))
    # Left over (a video ran out of frames, or costly frames did not fit): best remaining
    # frames of the chosen videos, in choice order.
    for i in chosen:
        if carry <= 0:
            break
        got = _take(order[i], frame_costs[i], carry, taken[i])
        picked[i] += got
        carry -= int(sum(frame_costs[i][f] for f in got))
    if carry > 0:
        log.warning("the chosen videos had too few unlabelled frames: %d of %d boxes unspent",
                    carry, budget)
    return picked
