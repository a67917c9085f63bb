"""The active-learning run folder: its layout, a round's atomic commit and the metrics file.

This module is the only code that knows the folder's names; the round engine, the annotation
round trip, reports and exports ask it for paths::

    RUN/config.json                  the RunConfig (`RunFolder.config`)
    RUN/dataset.json                 the data's fingerprint (`claus.config`)
    RUN/metrics.jsonl                one line per committed round (`RunFolder.metrics`)
    RUN/round_000/                   a committed round (`RunFolder.round(r)`)
        labels.json  train/  model.pt  eval.json  centers.pt  scores.pt  selection.json
        next_labels.json  round.json  manifest.json  round0_from.txt  import.json  export/
    RUN/round_001.partial/           the round in progress (`RunFolder.partial(r)`)

A round becomes visible only by one atomic rename of its `.partial` folder (`RunFolder.commit`),
after its manifest and summary are written; a kill before the rename leaves the round in
progress, a kill after it a committed round (the metrics file is rebuilt from the committed
rounds' summaries, so one missing its line is repaired by `write_metrics`).

An experiment (`claus.rounds.run_experiment`) keeps one run per strategy and seed in
OUT/<strategy>/seed<k> (`experiment_run`, `experiment_runs`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .io import atomic_write_json, atomic_write_text, read_json, sha256_file

__all__ = ["DamagedRunError", "RoundFolder", "RunFolder", "experiment_run", "experiment_runs"]

_ROUND = "round_{:03d}"
_PARTIAL = ".partial"
_ROUND_NAME = re.compile(r"round_(\d{3,})(\.partial)?")
_SEED = re.compile(r"seed(\d+)")
#: What a committed round's results rest on (its folder's files, when present): the manifest
#: holds their sha256 so a resume can tell a damaged round from a sound one.
OWNED = ("labels.json", "model.pt", "eval.json", "scores.pt", "centers.pt", "selection.json",
         "next_labels.json", "train/checkpoint.pt")


class DamagedRunError(ValueError):
    """A committed round's file is missing or changed since the round was committed."""


def _round_number(name: str) -> tuple[int, bool] | None:
    """(r, in progress) of a round folder's name; None for any other name (round_0001 too:
    the writer spells round 1 round_001)."""
    m = _ROUND_NAME.fullmatch(name)
    if m is None or _ROUND.format(int(m[1])) != f"round_{m[1]}":
        return None
    return int(m[1]), m[2] is not None


@dataclass(frozen=True)
class RoundFolder:
    """One round's folder (committed, or `.partial` while in progress) and its files.

    `folder / "name"` and `os.fspath(folder)` work as on the folder's `path`.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def round(self) -> int | None:
        """r of round_<r>[.partial]; None for a folder of another name."""
        parsed = _round_number(self.path.name)
        return None if parsed is None else parsed[0]

    @property
    def in_progress(self) -> bool:
        return self.path.name.endswith(_PARTIAL)

    # The round's files, in the order the stages write them.
    @property
    def labels(self) -> Path:
        """The label state the round trains on."""
        return self.path / "labels.json"

    @property
    def train(self) -> Path:
        """The trainer's folder (its checkpoint and log)."""
        return self.path / "train"

    @property
    def round0_from(self) -> Path:
        """The run whose round 0 this round adopted (a line of text)."""
        return self.path / "round0_from.txt"

    @property
    def centers(self) -> Path:
        """Initial cluster centres of the cluster loss."""
        return self.path / "centers.pt"

    @property
    def model(self) -> Path:
        """The trained weights."""
        return self.path / "model.pt"

    @property
    def evaluation(self) -> Path:
        """Test metrics of the trained model."""
        return self.path / "eval.json"

    @property
    def scores(self) -> Path:
        """Pool scores (frame scores and video embeddings)."""
        return self.path / "scores.pt"

    @property
    def selection(self) -> Path:
        """The chosen videos and frames."""
        return self.path / "selection.json"

    @property
    def next_labels(self) -> Path:
        """The labels after the oracle labelled the selection."""
        return self.path / "next_labels.json"

    @property
    def import_record(self) -> Path:
        """What a human import did (`claus.annotation.importer`)."""
        return self.path / "import.json"

    @property
    def export(self) -> Path:
        """Default folder of the annotation exports (one folder per format inside)."""
        return self.path / "export"

    @property
    def summary(self) -> Path:
        """The round's summary, written last (round.json)."""
        return self.path / "round.json"

    @property
    def manifest(self) -> Path:
        """sha256 of the files the round's results rest on."""
        return self.path / "manifest.json"

    def awaits_labels(self) -> bool:
        """Whether the round holds a non-empty selection without imported labels."""
        if not self.selection.exists() or self.next_labels.exists():
            return False
        return any(read_json(self.selection, "selection")["frames"].values())

    def write_manifest(self) -> None:
        """The manifest of the files present (`OWNED`)."""
        files = {name: sha256_file(self.path / name) for name in OWNED
                 if (self.path / name).is_file()}
        atomic_write_json(self.manifest, {"format": "claus.manifest", "files": files})

    def verify(self) -> None:
        """Check the files against the manifest (rounds committed before manifests existed are
        not checked).

        Raises:
            DamagedRunError: a file is missing or its content changed; the message names it.
        """
        if not self.manifest.is_file():
            return
        name = self.path.name
        for rel, sha in read_json(self.manifest, "round manifest").get("files", {}).items():
            path = self.path / rel
            if not path.is_file():
                raise DamagedRunError(
                    f"{path}: missing from committed round {name}; restore it, or delete "
                    f"{self.path} and the rounds after it to have them recomputed")
            if sha256_file(path) != sha:
                raise DamagedRunError(
                    f"{path}: changed since round {name} was committed (sha256 {sha[:12]} "
                    f"expected); restore it, or delete {self.path} and the rounds after it to "
                    "have them recomputed")


class RunFolder:
    """An active-learning run folder (see the module docstring for its layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def config(self) -> Path:
        """The run's RunConfig (JSON)."""
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        """One line per committed round: its summary."""
        return self.path / "metrics.jsonl"

    def round(self, r: int) -> RoundFolder:
        """Round r's folder once committed."""
        return RoundFolder(self.path / _ROUND.format(r))

    def partial(self, r: int) -> RoundFolder:
        """Round r's folder while in progress."""
        return RoundFolder(self.path / (_ROUND.format(r) + _PARTIAL))

    def _rounds(self, in_progress: bool) -> list[int]:
        if not self.path.is_dir():
            return []
        found = [(_round_number(p.name), p) for p in self.path.iterdir() if p.is_dir()]
        return sorted(n[0] for n, p in found if n is not None and n[1] == in_progress
                      and (in_progress or (p / "round.json").is_file()))

    def committed(self) -> list[int]:
        """The committed rounds (a folder with its summary), ascending."""
        return self._rounds(False)

    def started(self) -> list[RoundFolder]:
        """The rounds in progress, ascending."""
        return [self.partial(r) for r in self._rounds(True)]

    def summaries(self) -> list[dict]:
        """The committed rounds' summaries, in round order."""
        return [read_json(self.round(r).summary, "round summary") for r in self.committed()]

    def commit(self, work: RoundFolder, summary: dict) -> RoundFolder:
        """Commit a round in progress: its manifest, its summary, then the one atomic rename
        that makes it visible, then the metrics file. Returns the committed folder."""
        r = work.round
        if r is None or not work.in_progress:
            raise ValueError(f"{work.path}: not a round in progress of {self.path}")
        work.write_manifest()
        atomic_write_json(work.summary, summary)
        done = self.round(r)
        os.replace(work.path, done.path)  # the commit
        self.write_metrics()
        return done

    def write_metrics(self) -> None:
        """The metrics file from the committed rounds' summaries; left untouched when it
        already says that (a finished run resumes without writing anything)."""
        text = "".join(json.dumps(x, allow_nan=False) + "\n" for x in self.summaries())
        if self.metrics.is_file() and self.metrics.read_text(
                encoding="utf-8", errors="replace") == text:
            return
        atomic_write_text(self.metrics, text)


def experiment_run(out: str | os.PathLike, strategy: str, seed: int) -> Path:
    """The run folder of one strategy and seed in an experiment folder."""
    return Path(out) / strategy / f"seed{int(seed)}"


def experiment_runs(out: str | os.PathLike) -> list[tuple[str, int, Path]]:
    """(strategy, seed, folder) of every folder of an experiment named like a run (its
    content unchecked), sorted by strategy then seed."""
    out = Path(out)
    runs = []
    if out.is_dir():
        for p in out.glob("*/seed*"):
            m = _SEED.fullmatch(p.name)
            if m and p.is_dir():
                runs.append((p.parent.name, int(m[1]), p))
    return sorted(runs, key=lambda x: (x[0], x[1]))
