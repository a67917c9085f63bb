"""Videos that cannot be read: left out of one stage, counted and named; fatal only in numbers.

One missing or truncated frame must not end a job of hours. Every stage that reads frames
(training, evaluation, pool scoring, frame-store preparation, export) catches a video's
`FrameReadError`, leaves the video out of that stage and records it in a `BadVideos` ledger,
which warns once per video, naming the file and the reason. A job fails only when the
unreadable videos are more than `max_share` of the dataset's videos (`--max-bad-share`,
`TrainConfig.max_bad_share`, default 5%): then files are missing wholesale or the root or store
is the wrong one, and `TooManyBadVideos` says so in one line.

The ledger's JSON form, {stage: {video: {"file", "reason"}}}, is what `round.json`, a
supervised run's `results.json` and the training metrics record.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_BAD_SHARE", "STAGES", "BadVideo", "BadVideos", "TooManyBadVideos",
           "data_place", "one_line"]

#: The share of a dataset's videos that may be unreadable before a job stops.
DEFAULT_MAX_BAD_SHARE = 0.05

#: The stages that read frames, as the warnings name them.
STAGES = {"train": "training", "eval": "evaluation", "score": "pool scoring",
          "prepare": "the frame store", "export": "the export"}


class TooManyBadVideos(ValueError):
    """More videos could not be read than a job allows, or none is left to work on."""


def one_line(text: object) -> str:
    """`text` as one line (reasons end up in one-line errors and JSON fields)."""
    return " ".join(str(text).split())


def data_place(ds) -> str:
    """Where a dataset's frames come from, for messages: its frame store, else its root, else
    its name."""
    spec = getattr(ds, "spec", None)
    for key in ("store", "root"):
        where = getattr(spec, key, None)
        if where:
            return str(where)
    return str(getattr(ds, "name", "dataset"))


@dataclass(frozen=True)
class BadVideo:
    """One unreadable video: where it was found (`stage`, a key of `STAGES`), the file that
    failed (None when the error did not name one) and the reason (one line)."""

    name: str
    stage: str
    reason: str
    file: str | None = None

    def to_json(self) -> dict:
        return {"file": self.file, "reason": self.reason}


class BadVideos:
    """The videos a job could not read, by stage, with the rule that makes them fatal.

    Args:
        where: the dataset's root or store (`data_place`), named in the error.
        total: the dataset's videos, M of "N of M videos could not be read".
        max_share: the largest share N / M a job goes on with; None: no limit.
    """

    def __init__(self, where: str, total: int, max_share: float | None = DEFAULT_MAX_BAD_SHARE):
        if max_share is not None and not 0 <= max_share <= 1:
            raise ValueError(f"--max-bad-share: must be in [0, 1], got {max_share}")
        self.where, self.total, self.max_share = str(where), int(total), max_share
        self._first: dict[str, BadVideo] = {}  # each video once, as first found
        self._stages: dict[str, dict[str, BadVideo]] = {}

    @classmethod
    def of(cls, ds, max_share: float | None = DEFAULT_MAX_BAD_SHARE) -> BadVideos:
        """A ledger for a `VideoDataset` (its place and video count)."""
        return cls(data_place(ds), len(ds), max_share)

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def __len__(self) -> int:
        return len(self._first)

    def names(self) -> list[str]:
        """Every unreadable video, in the order found."""
        return list(self._first)

    def stage(self, stage: str) -> dict[str, BadVideo]:
        """{video: BadVideo} of the videos one stage left out."""
        return dict(self._stages.get(stage, {}))

    def get(self, name: str) -> BadVideo | None:
        """How a video was first found unreadable (None: it was not)."""
        return self._first.get(name)

    def add(self, name: str, stage: str, error: BaseException | str, file: str | None = None,
            *, warn: bool = True, check: bool = True) -> bool:
        """Record that `stage` left video `name` out because of `error`.

        The first time a video is recorded a warning names it, the stage, and the reason
        (which names the file); `file` defaults to the error's `path`.

        Returns:
            Whether the video was new to the ledger.
        Raises:
            TooManyBadVideos: with `check`, when the ledger is now over its share.
        """
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; choices: {', '.join(STAGES)}")
        if file is None:
            file = getattr(error, "path", None)
        entry = BadVideo(str(name), stage, one_line(error) or type(error).__name__,
                         None if file is None else str(file))
        new = name not in self._first
        if new:
            self._first[entry.name] = entry
            if warn:
                warnings.warn(f"{self.where}: video {entry.name!r} left out of "
                              f"{STAGES[stage]}: {entry.reason}", UserWarning, stacklevel=2)
        self._stages.setdefault(stage, {}).setdefault(entry.name, entry)
        if check:
            self.check()
        return new

    def add_json(self, stage: str, entries: Mapping[str, Mapping], *, warn: bool = False,
                 check: bool = True) -> None:
        """Record a stage's {video: {"file", "reason"}} (as `to_json` writes them), without a
        warning by default: a file read back holds videos warned about when they were found."""
        for name, e in entries.items():
            self.add(name, stage, str(e.get("reason", "")), e.get("file"), warn=warn,
                     check=False)
        if check:
            self.check()

    def to_json(self) -> dict[str, dict[str, dict]]:
        """{stage: {video: {"file", "reason"}}} of the stages that left a video out."""
        return {s: {n: b.to_json() for n, b in per.items()} for s, per in self._stages.items()
                if per}

    def check(self) -> None:
        """Raise `TooManyBadVideos` when more than `max_share` of the videos are unreadable."""
        if self.max_share is None or len(self) <= self.max_share * self.total:
            return
        first = next(iter(self._first.values()))
        raise TooManyBadVideos(
            f"{self.where}: {len(self)} of {self.total} videos could not be read "
            f"(> {self.max_share * 100:g}%), first: {first.name} ({first.reason}); fix or "
            "remove them, or raise --max-bad-share")

    def none_left(self, what: str) -> TooManyBadVideos:
        """The error of a stage left with nothing to read: none of `what` could be read."""
        first = next(iter(self._first.values()), None)
        example = f", first: {first.name} ({first.reason})" if first is not None else ""
        return TooManyBadVideos(f"{self.where}: none of {what} could be read{example}; fix or "
                                "remove them")
