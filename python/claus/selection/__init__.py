"""Pool scoring and frame/video selection for active learning rounds.

`scoring` turns per-clip MC-dropout statistics into per-frame uncertainty and entropy scores
and picks the frames to label in each video (over the fused `claus_ext` ops); `pool` scores a
model's pool of videos (batched MC dropout, video embeddings); `strategies` chooses a round's
videos and frames (random, equidistant, entropy, uncertainty, claus).
"""

from .scoring import (
    FRAME_SCORES,
    FrameScores,
    FrameSelection,
    FrameStats,
    frame_scores,
    select_frames,
    stitch_clip_stats,
)
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
