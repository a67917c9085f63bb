"""Pool scoring and frame/video selection for active learning rounds.

`scoring` turns per-clip MC-dropout statistics into per-frame uncertainty and entropy scores
and picks the frames to label in each video (over the fused `claus_ext` ops).
"""

from .scoring import (
    FrameScores,
    FrameSelection,
    FrameStats,
    frame_scores,
    select_frames,
    stitch_clip_stats,
)

__all__ = [
    "FrameScores",
    "FrameSelection",
    "FrameStats",
    "frame_scores",
    "select_frames",
    "stitch_clip_stats",
]
