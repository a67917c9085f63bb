"""Pool scoring and frame/video selection for active learning rounds.

`scoring` turns per-clip MC-dropout statistics into per-frame uncertainty and entropy scores
and picks the frames to label in each video (over the fused `claus_ext` ops); `pool` scores a
model's pool of videos (batched MC dropout, video embeddings); `base` defines what a strategy
is (`Strategy`) and holds the one registry of them (`register_strategy`); `strategies` holds the
built-in ones (random, equidistant, entropy, uncertainty, claus, full) and `select_round`, which
spends a round's budget along a strategy's choices; `criteria` names the frame scores.

The registry, the strategies and the names load without torch (a configuration checks its
strategy and frame score through them); the scoring functions load on first use (PEP 562).
"""

from ..lazy import lazy_getattr
from .base import (
    FrameOrder,
    Pool,
    Strategy,
    VideoChoice,
    get_strategy,
    is_upper_bound,
    register_strategy,
)
from .criteria import FRAME_SCORES
from .strategies import (
    STRATEGIES,
    Selection,
    allocate_clusters,
    check_strategy,
    claus_videos,
    default_videos_per_round,
    equidistant_frames,
    select_round,
)

__all__ = [
    "FRAME_SCORES",
    "FrameOrder",
    "Pool",
    "Strategy",
    "VideoChoice",
    "get_strategy",
    "is_upper_bound",
    "register_strategy",
    "STRATEGIES",
    "Selection",
    "allocate_clusters",
    "check_strategy",
    "claus_videos",
    "default_videos_per_round",
    "equidistant_frames",
    "select_round",
    "FrameScores",
    "FrameSelection",
    "FrameStats",
    "frame_scores",
    "select_frames",
    "stitch_clip_stats",
]

#: Loaded on first use (PEP 562): scoring needs torch and the fused ops, the registry does not.
_LAZY = {n: ".scoring" for n in ("FrameScores", "FrameSelection", "FrameStats", "frame_scores",
                                 "select_frames", "stitch_clip_stats")}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)
