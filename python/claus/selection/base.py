"""What a selection strategy is, and the one registry of them.

A strategy is an object (`Strategy`): what it scores, whether it clusters, the training its
rounds use, how it picks videos and in what order it takes their frames. The budget arithmetic
is not the strategy's: `claus.selection.strategies.select_round` hands a strategy the round's
candidates (`Pool`), asks it for videos (`choose_videos`) and frame orders (`order_frames`), and
spends the budget along those orders the same way for every strategy.

A new strategy is one class registered in one place (`register_strategy`); its name is then
accepted wherever a strategy is named (`RunConfig.strategy`, `--strategy`, experiments,
reports). The built-in strategies are registered by `claus.selection.strategies`::

    @register_strategy
    class LongestFirst(Strategy):
        name = "longest"
        description = "longest unlabelled videos first, equally spaced frames"

        def rank_videos(self, pool, rng):
            return sorted(pool.candidates, key=lambda i: (-pool.num_frames[i], i))

All randomness comes from the `numpy.random.Generator` of the round that `select_round` passes
in; a strategy that draws from anything else makes runs irreproducible.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the config imports the registry: a runtime import would be circular
    import torch

    from ..config import RunConfig
    from ..training import TrainConfig
    from .scoring import FrameScores

__all__ = [
    "STRATEGIES",
    "FrameOrder",
    "Pool",
    "Strategy",
    "VideoChoice",
    "check_strategy",
    "equidistant_frames",
    "get_strategy",
    "is_upper_bound",
    "register_strategy",
]


@dataclass
class Pool:
    """One round's candidates, as `select_round` hands them to a strategy.

    Every per-video sequence has N entries (the training videos `select_round` was given, in its
    index space); a strategy answers with indices into them.

    Attributes:
        names: (N,) video names.
        num_frames: (N,) frames per video.
        frame_costs: N int arrays (num_frames,), the budget cost of each frame (>= 1).
        labelled: N sets of already labelled frames (0-based).
        candidates: the videos to choose from (unlabelled ones; partly labelled ones when too
            few unlabelled videos are left).
        untouched: videos that must be taken first (the unlabelled ones, when `candidates` had
            to be topped up with partly labelled videos); empty otherwise.
        V: videos to choose this round (untouched ones included).
        per_video: frames a chosen video is likely to get this round.
        top_t: scored strategies rank a video by the mean of its top-t frame scores.
        scores: `FrameScores` of the N videos (strategies with a `score`), else None.
        clusters: (N,) int64 cluster of every video (strategies that cluster), else None.
        cluster_cap: largest share of labelled videos one cluster may hold, or None.
        sigma, radius: the proximity penalty and suppression reach of `select_frames`.
    """

    names: Sequence[str]
    num_frames: Sequence[int]
    frame_costs: Sequence[np.ndarray]
    labelled: list[set[int]]
    candidates: list[int]
    untouched: list[int]
    V: int
    per_video: int
    top_t: int
    scores: FrameScores | None = None
    clusters: np.ndarray | None = None
    cluster_cap: float | None = None
    sigma: float = 8 / 3
    radius: int = 4

    def free_frames(self, i: int) -> list[int]:
        """Video i's unlabelled frames, ascending."""
        return [f for f in range(self.num_frames[i]) if f not in self.labelled[i]]

    @cached_property
    def labelled_mask(self) -> torch.Tensor:
        """(N,L) bool, the labelled frames padded to the scores' L (needs `scores`)."""
        # Imported here: only scored strategies need it, and the registry (read by every
        # configuration) must load without torch.
        import torch

        mask = torch.zeros(len(self.names), self.scores.uncertainty.shape[1], dtype=torch.bool)
        for i, s in enumerate(self.labelled):
            if s:
                mask[i, sorted(s)] = True
        return mask


@dataclass
class VideoChoice:
    """The videos a strategy chose: `videos` in choice order (the budget is spent in it);
    `scores` {video: ranking score or None}; `clusters` {video: cluster} (clustering
    strategies; recorded in the selection)."""

    videos: list[int]
    scores: dict[int, float | None] = field(default_factory=dict)
    clusters: dict[int, int] = field(default_factory=dict)


@dataclass
class FrameOrder:
    """A chosen video's unlabelled frames in the order to take them (the budget takes them
    while they fit; a frame may repeat, only its first take counts); `scores` holds the score
    of the first len(scores) frames, None for unscored orders."""

    frames: list[int]
    scores: list[float] | None = None


def equidistant_frames(num_frames: int, labelled: set[int], k: int) -> list[int]:
    """k equally spaced unlabelled frames: centres of k equal segments, each moved to the
    nearest unlabelled frame not yet taken (fewer when the video has fewer free frames)."""
    free = [f for f in range(num_frames) if f not in labelled]
    k = min(k, len(free))
    out: list[int] = []
    taken: set[int] = set()
    free_arr = np.asarray(free)
    for j in range(k):
        target = (j + 0.5) * num_frames / k
        order = np.argsort(np.abs(free_arr + 0.5 - target), kind="stable")
        f = next(int(free_arr[o]) for o in order if int(free_arr[o]) not in taken)
        taken.add(f)
        out.append(f)
    return out


class Strategy:
    """A selection strategy. Subclass it, set `name` and `description`, override what differs
    from the defaults (random videos, equally spaced frames), and register it.

    Class attributes (what the round engine asks of a strategy):
        name: the name runs, flags and reports use (letters, digits, "_", "-", ".").
        description: one line, shown where strategies are listed.
        score: the frame score pool scoring must provide ("uncertainty" or "entropy", read
            from `Pool.scores`), or None: the round scores no pool.
        scoring: how the pool is scored: "mc" (MC-dropout passes) or "deterministic" (one).
        clusters: whether the round clusters the pool's video embeddings (`Pool.clusters`).
        selects: False for a strategy without selection rounds (`full`: everything labelled).
    """

    name: str = ""
    description: str = ""
    score: str | None = None
    scoring: str = "mc"
    clusters: bool = False
    selects: bool = True

    def training(self, cfg: RunConfig) -> TrainConfig:
        """The `TrainConfig` each round of a run of this strategy trains with (its training
        extras); by default the run's training with its seed and no cluster loss."""
        return cfg.train.replace(seed=int(cfg.seed), beta=0.0)

    def choose_videos(self, pool: Pool, rng: np.random.Generator) -> VideoChoice:
        """The round's videos: the untouched ones, then the first of `rank_videos`."""
        ranked = self.rank_videos(pool, rng)
        return VideoChoice(pool.untouched + ranked[: pool.V - len(pool.untouched)])

    def rank_videos(self, pool: Pool, rng: np.random.Generator) -> list[int]:
        """`pool.candidates`, best first (default: a random order)."""
        return [int(i) for i in rng.permutation(pool.candidates)]

    def order_frames(self, pool: Pool, videos: list[int],
                     rng: np.random.Generator) -> dict[int, FrameOrder]:
        """{video: its `FrameOrder`} for the chosen videos, in choice order (default: each
        video's `frame_order`)."""
        return {i: self.frame_order(pool, i, rng) for i in videos}

    def frame_order(self, pool: Pool, i: int, rng: np.random.Generator) -> FrameOrder:
        """Video i's frames: `pool.per_video` equally spaced unlabelled frames, then every
        unlabelled frame in random order (should the quota allow more: costly frames)."""
        order = equidistant_frames(pool.num_frames[i], pool.labelled[i], pool.per_video)
        return FrameOrder(order + [int(f) for f in rng.permutation(pool.free_frames(i))])


#: The registered strategies by name, in registration order (the order of reports).
STRATEGIES: dict[str, Strategy] = {}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def register_strategy(strategy):
    """Make a strategy known by its name: the one place a strategy is added.

    Args:
        strategy: a `Strategy` instance, or a subclass (instantiated without arguments; so it
            can decorate the class, which is returned).
    Returns:
        what was given.
    Raises:
        ValueError: a bad name, or the name is taken by a strategy of another class.
    """
    obj = strategy() if isinstance(strategy, type) else strategy
    if not isinstance(obj, Strategy):
        raise TypeError(f"register_strategy: {type(obj).__name__} is not a "
                        "claus.selection.Strategy; subclass it")
    name = obj.name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"strategy name {name!r}: use letters, digits, '_', '-' and '.' (it "
                         "names the run's folder)")
    old = STRATEGIES.get(name)
    if old is not None and type(old) is not type(obj):
        raise ValueError(f"strategy name {name!r} is taken by {type(old).__name__}; choose "
                         "another name")
    STRATEGIES[name] = obj
    return strategy


def get_strategy(strategy: str | Strategy) -> Strategy:
    """The registered strategy of a name (a `Strategy` is returned as it is).

    Raises:
        ValueError: an unknown name; the message lists the registered strategies.
    """
    if isinstance(strategy, Strategy):
        return strategy
    try:
        return STRATEGIES[strategy]
    except (KeyError, TypeError):
        choices = "; ".join(f"{k}: {v.description}" for k, v in STRATEGIES.items())
        raise ValueError(f"unknown strategy {strategy!r}; choices: {choices}") from None


def check_strategy(name: str) -> str:
    """`name` if it is a registered strategy, else a ValueError listing the choices."""
    get_strategy(name)
    return name


def is_upper_bound(name: str) -> bool:
    """Whether `name` is a registered strategy without selection rounds (`full`), which
    tables and plots show as the upper bound; unknown names are ordinary strategies."""
    s = STRATEGIES.get(name)
    return s is not None and not s.selects
