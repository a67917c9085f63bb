"""The requests of a waiting round as JSON Lines: one line per video, for any labelling tool.

`OUT/requests.jsonl`, one object per selected video, in selection order::

    {"format": "claus.requests", "version": 1, "run": "runs/h/claus/seed0", "round": 1,
     "dataset": "synthetic:demo", "strategy": "claus", "video": "walk/g0003_c01",
     "source": "/.../frames/g0003_c01.npy", "source_kind": "array",
     "fps": null, "num_frames": 60, "width": 64, "height": 64,
     "frames": [4, 31, 52], "scores": [0.91, 0.88, 0.75], "video_score": 0.87, "cluster": 2}

`frames` are 0-based and ascending; `scores[i]` is the score of `frames[i]` (null for unscored
strategies); `source` is the video file, frames folder (with "frame_pattern" and "first_frame")
or frame array; `fps` is known for video files only.
"""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_write_text
from .pending import PendingRound, frame_source, video_fps

__all__ = ["REQUESTS_FORMAT", "export_jsonl", "request_lines"]

REQUESTS_FORMAT = "claus.requests"


def request_lines(pending: PendingRound) -> list[dict]:
    """One JSON object per requested video (see the module docstring)."""
    ds = pending.dataset
    out = []
    for req in pending.requests:
        v = ds[req.video]
        out.append({
            "format": REQUESTS_FORMAT, "version": 1, "run": str(pending.run),
            "round": pending.round, "dataset": ds.name, "strategy": pending.cfg.strategy,
            "video": v.name, **frame_source(v), "fps": video_fps(v),
            "num_frames": v.num_frames, "width": v.width, "height": v.height,
            "frames": list(req.frames), "scores": list(req.scores),
            "video_score": req.video_score, "cluster": req.cluster})
    return out


def export_jsonl(pending: PendingRound, out: str | Path) -> Path:
    """Write `OUT/requests.jsonl` atomically; returns its path."""
    import json

    path = Path(out) / "requests.jsonl"
    atomic_write_text(path, "".join(json.dumps(line, allow_nan=False, ensure_ascii=False) + "\n"
                                    for line in request_lines(pending)))
    return path
