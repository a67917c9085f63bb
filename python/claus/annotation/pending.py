"""The round that waits for people: its requests and what is known about their videos.

An interactive run (`RunConfig.oracle == "human"`) stops after a round's selection
(`claus.rounds.AwaitingLabels`). The round stays in progress (`RunFolder.partial(r)`, see
`claus.run_folder` for its files) holding the labels it trained on, the trained weights and
the selection (the requested frames and their scores). `open_pending` finds that round;
exporters turn its requests into annotation-tool inputs and the importer writes the people's
boxes as the round's new labels (`RoundFolder.next_labels`), which lets `claus.train --resume
RUN` commit the round.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..config import FORMAT as RUN_FORMAT
from ..config import RunConfig, check_data
from ..data import LabelState, VideoDataset
from ..data.dataset import Video
from ..data.frames import ArrayFrames, ImageFolderFrames, VideoFileFrames
from ..run_folder import RoundFolder, RunFolder
from ..selection.strategies import Selection

__all__ = ["PendingError", "PendingRound", "Request", "frame_source", "open_pending",
           "safe_relpath", "video_fps"]


class PendingError(ValueError):
    """The run folder has no round waiting for labels; the message says why and what to do."""


@dataclass(frozen=True)
class Request:
    """What one video needs: `frames` (0-based, ascending) and the score of each (None for
    unscored strategies); `video_score` ranked the video; `cluster` is claus's video cluster."""

    video: str
    frames: tuple[int, ...]
    scores: tuple[float | None, ...]
    video_score: float | None
    cluster: int | None


@dataclass
class PendingRound:
    """A round of an interactive run whose selection waits for labels.

    Attributes:
        run: the run folder. cfg: its RunConfig. round: r, the round that selected.
        folder: round r's folder in progress (`RunFolder.partial(r)`; `files` names its
            files). dataset: the run's dataset.
        labels: the label state round r trained on; imports add to a copy.
        selection: round r's selection.
    """

    run: Path
    cfg: RunConfig
    round: int
    folder: Path
    dataset: VideoDataset
    labels: LabelState
    selection: Selection

    @property
    def files(self) -> RoundFolder:
        """The round folder's files (`RoundFolder`: next_labels, import_record, model, ...)."""
        return RoundFolder(self.folder)

    @property
    def label_round(self) -> int:
        """The round number the imported labels carry (r + 1, as the simulated oracle)."""
        return self.round + 1

    @property
    def imported(self) -> bool:
        """Whether labels were imported already (a new import replaces them)."""
        return self.files.next_labels.exists()

    @property
    def requests(self) -> list[Request]:
        """One request per selected video, in selection order."""
        out = []
        for name, picks in self.selection.frames.items():
            scores = list(self.selection.scores.get(name) or [None] * len(picks))
            pairs = sorted(zip(picks, scores + [None] * (len(picks) - len(scores)),
                               strict=False))
            vs = self.selection.video_scores.get(name)
            out.append(Request(name, tuple(int(f) for f, _ in pairs),
                               tuple(None if s is None else float(s) for _, s in pairs),
                               None if vs is None else float(vs),
                               self.selection.clusters.get(name)))
        return out

    def requested(self) -> dict[str, set[int]]:
        """{video: requested frames}."""
        return {r.video: set(r.frames) for r in self.requests}


def open_pending(run: str | os.PathLike, dataset: VideoDataset | None = None) -> PendingRound:
    """The round of `run` that waits for labels.

    Args:
        run: an active-learning run folder started with `--oracle human`.
        dataset: the opened dataset (default: the one the run's config names).
    Raises:
        PendingError: not a run folder, not interactive, or no round waits (the message says
            which, and what to run).
    """
    folder = RunFolder(run)
    run, conf = folder.path, folder.config
    try:
        doc = json.loads(conf.read_text())
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        raise PendingError(f"{run} is not an active-learning run folder (no {conf} of format "
                           f"{RUN_FORMAT!r}); start one with `python -m claus.train --strategy "
                           "NAME --oracle human`")
    cfg = RunConfig.from_json(doc, str(conf))
    if cfg.oracle != "human":
        raise PendingError(f"{run} was started with --oracle {cfg.oracle}: its selections are "
                           "labelled by the simulation, not by people; start an interactive "
                           "run with `python -m claus.train --strategy NAME --oracle human`")
    partial = folder.started()
    waiting = [p for p in partial if p.selection.is_file()]
    if not waiting:
        if partial:
            raise PendingError(f"round {partial[-1].round} of {run} has not selected "
                               f"its frames yet; run `python -m claus.train --resume {run}` "
                               "first")
        raise PendingError(f"no round of {run} waits for labels (every started round is "
                           f"committed); continue with `python -m claus.train --resume {run}`")
    work = waiting[-1]
    if dataset is None:
        check_data(run, cfg.data)
        dataset = cfg.data.open()
    ds = dataset
    labels = LabelState.load(work.labels, ds)
    selection = Selection.from_json(json.loads(work.selection.read_text()))
    return PendingRound(run, cfg, work.round, work.path, ds, labels, selection)


def frame_source(v: Video) -> dict:
    """Where a video's frames are: {"source": path or None, "source_kind": "video" | "frames" |
    "array" | None}, plus "frame_pattern" and "first_frame" for image folders."""
    s = v.source
    if isinstance(s, VideoFileFrames):
        return {"source": s.path, "source_kind": "video"}
    if isinstance(s, ImageFolderFrames):
        return {"source": str(Path(s.pattern).parent), "source_kind": "frames",
                "frame_pattern": s.pattern, "first_frame": s.first}
    if isinstance(s, ArrayFrames):
        return {"source": s.file, "source_kind": "array"}
    return {"source": None, "source_kind": None}


def video_fps(v: Video) -> float | None:
    """The frame rate of a video file source (PyAV), None when unknown (frames, arrays)."""
    if not isinstance(v.source, VideoFileFrames):
        return None
    try:
        _, stream = v.source._stream()
        rate = stream.average_rate or stream.guessed_rate
        return float(rate) if rate else None
    except Exception:  # no PyAV, unreadable file: the rate is simply unknown
        return None


def safe_relpath(name: str) -> PurePosixPath:
    """A video name as a relative path inside an export folder; names that would escape it
    (absolute, '..', empty parts) are refused."""
    p = PurePosixPath(name)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") for part in p.parts) \
            or "\\" in name:
        raise ValueError(f"video name {name!r} cannot be used as a relative path")
    return p
