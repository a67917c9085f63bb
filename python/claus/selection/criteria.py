"""The names pool scoring and frame selection go by, and their checks (torch-free, so a run
configuration is checked without importing torch).

`FRAME_SCORES`: how a frame's MC-dropout uncertainty is scored (`RunConfig.frame_score`,
`claus.selection.scoring.frame_scores`). `CRITERIA`: which frame score a scored strategy ranks
by (`Strategy.score`, `claus.selection.scoring.select_frames`).
"""

from __future__ import annotations

__all__ = ["CRITERIA", "FRAME_SCORES", "check_frame_score"]

CRITERIA = ("uncertainty", "entropy")

#: Frame scores and what each computes.
FRAME_SCORES = {
    "mean": "mean pixel uncertainty over the predicted foreground, unc_sum / fg_count (the "
            "paper's)",
    "mass": "foreground uncertainty mass per frame pixel, unc_sum / (H·W): large uncertain "
            "foreground outranks a few doubtful pixels",
}


def check_frame_score(score: str, what: str = "frame score") -> str:
    """`score` if it is one of `FRAME_SCORES`, else a ValueError naming `what` and the choices."""
    if score not in FRAME_SCORES:
        raise ValueError(f"unknown {what} {score!r}; choices: "
                         + "; ".join(f"{k}: {v}" for k, v in FRAME_SCORES.items()))
    return score
