"""Active-learning rounds over a run folder: train → evaluate → score → select → label → save.

A run is one strategy with one seed. Round 0 trains on the initial labelled set (default 1% of
the training split's boxes: random videos, a few random frames each, drawn from the seed alone
so every strategy starts from the same labels); each later round adds `step_percent` of the
boxes chosen by the strategy, up to `target_percent`. The last round only trains and evaluates.

Run folder (everything `--resume` needs)::

    RUN/config.json                  the RunConfig (a resumed run must match it)
    RUN/metrics.jsonl                one line per committed round (rewritten atomically)
    RUN/round_000/                   a committed round (renamed from round_000.partial/)
        labels.json                  the label state this round trained on
        train/                       the trainer's folder (checkpoint, its metrics.jsonl)
        eval.json                    test metrics of the trained model
        scores.pt                    pool scores (frame scores + video embeddings)
        selection.json               the chosen videos/frames with their scores (+ clusters)
        next_labels.json             labels after the oracle revealed the selection
        round.json                   summary; written last, then the folder is renamed;
                                     "skipped": {stage: {video: {"file", "reason"}}} lists the
                                     videos a stage left out as unreadable
    RUN/round_001.partial/           the round in progress: each step's file appears atomically

A kill at any moment leaves committed rounds intact and a `.partial` folder whose finished
steps are reused on resume (training resumes from its own checkpoint). A round becomes visible
only by the one atomic rename of its folder, so no round is ever half-written.

Unreadable videos (`claus.data.faults`): a video whose frames cannot be read is left out of
training, evaluation and pool scoring with a warning naming it, is never selected again, and is
listed in each round's round.json; a run stops only when more than `max_bad_share` of the
dataset's videos are unreadable.

Training and evaluation are injected (`Trainer`): by default `claus.training.fit` and
`claus.training.evaluate`; labelling is a function of its own (`simulated_oracle` reveals the
ground truth) so a human oracle can replace it.

With `RunConfig.oracle = "human"` the run is interactive: once a round's selection is saved,
`run_rounds` raises `AwaitingLabels` and the round stays `.partial`; people label the requests
(`python -m claus.select` exports them, `python -m claus.annotate` imports the boxes into the
round's `next_labels.json`), and the next `run_rounds` (`python -m claus.train --resume RUN`)
commits the round and goes on. Until the import, a resume stops again before any work.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import (
    CLAUS_BETA,
    DEFAULT_FRAME_SCORE,
    FORMAT,
    LEGACY_FIELDS,
    ORACLES,
    DatasetSpec,
    RunConfig,
    check_data,
    write_data_fingerprint,
)
from .data import BUDGET_UNITS, BudgetUnit, LabelState, VideoDataset, total_boxes
from .data.faults import BadVideos
from .io import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    read_json,
    remove_stray_temporaries,
    sha256_file,
)
from .selection.pool import PoolScores, score_pool
from .selection.strategies import SCORED, Selection, check_strategy, select_round
from .training import TrainConfig

__all__ = [
    "CLAUS_BETA",
    "DEFAULT_FRAME_SCORE",
    "LEGACY_FIELDS",
    "ORACLES",
    "AwaitingLabels",
    "RunConfig",
    "DamagedRunError",
    "RunMismatchError",
    "Trainer",
    "default_trainer",
    "initial_labels",
    "is_rounds_run",
    "load_metrics",
    "read_run_config",
    "relocate_run",
    "run_rounds",
    "simulated_oracle",
    "verify_round",
]

log = logging.getLogger(__name__)


class RunMismatchError(ValueError):
    """A run folder holds a run of another configuration; the message lists what differs."""


class AwaitingLabels(Exception):
    """An interactive run (`oracle="human"`) stopped: a round's selection waits for labels.

    Attributes: run (the run folder), round (the round whose selection waits), folder (its
    `.partial` folder). The message says what to run next.
    """

    def __init__(self, run: Path, round: int, folder: Path):
        self.run, self.round, self.folder = Path(run), int(round), Path(folder)
        super().__init__(
            f"round {round} of {run} waits for human labels (its selection is "
            f"{folder / 'selection.json'}). Next: export the requests with `python -m "
            f"claus.select --run {run} --format jsonl|cvat|labelstudio`, have them labelled, "
            f"import the boxes with `python -m claus.annotate --run {run} --file FILE --format "
            f"cvat-xml|cvat-images|labelstudio|ava-csv`, then continue with `python -m "
            f"claus.train --resume {run}`.")


def config_diff(old: dict, new: dict) -> list[str]:
    """'key: old → new' for every field of two `RunConfig.to_json()` that differs (the nested
    `data` and `train` fields as data.* and train.*)."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = a or {}, b or {}
            out += [f"{k}.{t}: {a.get(t)!r} → {b.get(t)!r}"
                    for t in sorted(set(a) | set(b)) if a.get(t) != b.get(t)]
        elif a != b:
            out.append(f"{k}: {a!r} → {b!r}")
    return out


def read_run_config(run_dir: str | os.PathLike) -> RunConfig:
    """The RunConfig stored in an active-learning run folder (RUN/config.json)."""
    conf = Path(run_dir) / "config.json"
    if not conf.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no config.json); check the path")
    try:
        doc = json.loads(conf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{conf}: unreadable ({exc}); restore it or start a new run "
                         "folder") from None
    return RunConfig.from_json(doc, str(conf))


def is_rounds_run(path: str | os.PathLike) -> bool:
    """Whether `path` is an active-learning run folder (its config.json is a RunConfig)."""
    conf = Path(path) / "config.json"
    try:
        return conf.is_file() and json.loads(conf.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def relocate_run(run_dir: str | os.PathLike, data: DatasetSpec) -> RunConfig:
    """Point an active-learning run at its data's new place (`--resume RUN --root NEW`).

    The new root must hold the very data the run started on (same annotation fingerprint);
    config.json and dataset.json are then rewritten atomically. Returns the updated config.
    """
    run = Path(run_dir)
    _join_ranks()  # under torchrun rank 0 alone rewrites the files
    cfg = read_run_config(run)
    if data == cfg.data:
        return cfg
    moved = {k: (getattr(cfg.data, k), getattr(data, k)) for k in ("name", "split", "preset",
                                                                   "seed")}
    changed = [k for k, (a, b) in moved.items() if a != b]
    if changed:
        raise RunMismatchError(f"{run}: only the dataset's --root and --store can change on "
                               f"resume; {', '.join(changed)} differ from the run's")
    check_data(run, data)
    cfg = cfg.replace(data=data)
    if _main():
        atomic_write_json(run / "config.json", cfg.to_json())
        write_data_fingerprint(run, data)
    _sync()
    log.info("%s now reads its data from %s", run, data.describe())
    return cfg


@dataclass
class Trainer:
    """How a round trains and evaluates (injected so tests and other trainers can plug in).

    fit(train, dataset, labels, run_dir, model=None, centers=None, progress=...) → trained
    model (train: the round's `TrainConfig`; centers: (K,D) initial cluster centres when the
    cluster loss is on); must resume from its own checkpoint in run_dir. evaluate(model,
    dataset, train, progress=...) → {metric: value}. geometry(train) → {"T", "stride", "size",
    "device"}: the clip geometry pool scoring must use.
    """

    fit: Callable[..., torch.nn.Module]
    evaluate: Callable[..., dict]
    geometry: Callable[[TrainConfig], dict]


def default_trainer() -> Trainer:
    """`claus.training.fit` / `evaluate`."""
    from . import training

    def fit(train, ds, labels, run_dir, model=None, centers=None, progress=True):
        return training.fit(train, ds, labels, run_dir, model=model, centers=centers,
                            resume=True, progress=progress, evaluate_every=False)

    def evaluate(model, ds, train, progress=True):
        return training.evaluate(model, ds, train, split="test", progress=progress)

    def geometry(train: TrainConfig) -> dict:
        return {"T": train.T, "stride": train.stride, "size": train.size,
                "device": _device(train.device)}

    return Trainer(fit=fit, evaluate=evaluate, geometry=geometry)


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def initial_labels(ds: VideoDataset, cfg: RunConfig) -> LabelState:
    """The initial labelled set: a function of the dataset and seed only (not the strategy)."""
    if cfg.strategy == "full":
        return LabelState.full(ds)
    rng = np.random.default_rng([cfg.seed, 0x1AB])
    return LabelState.random(ds, cfg.init_percent, rng, frames_per_video=cfg.init_frames_per_video)


def simulated_oracle(ds: VideoDataset, labels: LabelState, selection: Selection,
                     round: int) -> LabelState:
    """The simulated annotator: a copy of `labels` with the ground truth of the selected frames
    revealed (labelled in `round`)."""
    out = labels.copy()
    for name, frames in selection.frames.items():
        out.reveal(ds, name, frames, round)
    return out


def load_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The committed rounds' lines of RUN/metrics.jsonl."""
    from .training import read_metrics

    return read_metrics(Path(run_dir) / "metrics.jsonl")


def _round_dir(run: Path, r: int) -> Path:
    return run / f"round_{r:03d}"


def _committed(run: Path) -> list[int]:
    return sorted(int(p.name[6:]) for p in run.glob("round_[0-9][0-9][0-9]") if p.is_dir()
                  and (p / "round.json").exists())


#: Fields a resumed run may change (as `config_diff` names them): how many unreadable videos
#: it tolerates changes nothing it computes.
RESUMABLE = ("train.max_bad_share:",)


def _open_run(run: Path, cfg: RunConfig, resume: bool) -> None:
    conf = run / "config.json"
    if conf.exists():
        # Fields added to RunConfig since the run was written take their defaults, or the value
        # that reproduces what the run did then (LEGACY_FIELDS, version-1 configs).
        changed = config_diff(read_run_config(run).to_json(), cfg.to_json())
        diff = [d for d in changed if not d.startswith(RESUMABLE)]
        if diff:
            raise RunMismatchError(f"run folder {run} holds a run with another configuration; "
                                   "differences (stored → requested): " + "; ".join(diff))
        if changed and _main():  # only what may change on resume: kept for later resumes
            atomic_write_json(conf, cfg.to_json())
        if not resume and _committed(run):
            raise FileExistsError(f"run folder {run} already holds rounds; pass resume=True "
                                  "(--resume) to continue it or choose another folder")
        if _main():
            for p in remove_stray_temporaries(run):  # writes a kill interrupted
                log.info("removed %s, left by an interrupted write", p)
    else:
        run.mkdir(parents=True, exist_ok=True)
        if _main():
            write_data_fingerprint(run, cfg.data)
            atomic_write_json(conf, cfg.to_json())
    # On every rank, whichever branch it took: a rank that finds the file rank 0 has just
    # written must still pass the barrier rank 0 waits at, or the ranks' barriers pair up wrong.
    _sync()


def _dataset(cfg: RunConfig, dataset: VideoDataset | None) -> VideoDataset:
    """The run's dataset: `dataset` when given (it must be the data `cfg.data` names, so the
    run can be resumed without it), else `cfg.data` opened."""
    if dataset is None:
        return cfg.data.open()
    spec = getattr(dataset, "spec", None)
    if spec is not None and spec != cfg.data:
        raise ValueError(f"run_rounds: dataset= was opened as {spec.describe()} but the run's "
                         f"config names {cfg.data.describe()}; pass RunConfig(data="
                         "dataset.spec, ...) so a resume reopens the same data")
    return dataset


def _fresh_model(cfg: RunConfig, ds: VideoDataset) -> torch.nn.Module:
    from .models import build_model
    from .training import set_seed

    train = cfg.training()
    set_seed(train.seed)  # as claus.training.fit builds its model
    return build_model(train.model, ds.num_classes, weights=train.weights)


def _cluster_videos(emb: torch.Tensor, k: int, seed: int) -> np.ndarray:
    """(N,) cluster of every video embedding: KMeans (claus.cluster) seeded by the run."""
    from .cluster import KMeans

    k = min(k, emb.shape[0])
    return KMeans(k, seed=seed).fit_predict(emb.float()).cpu().numpy().astype(np.int64)


def run_rounds(
    run_dir: str | os.PathLike,
    cfg: RunConfig,
    *,
    resume: bool = True,
    trainer: Trainer | None = None,
    oracle: Callable[[VideoDataset, LabelState, Selection, int], LabelState] = simulated_oracle,
    dataset: VideoDataset | None = None,
    progress: bool = True,
    stop_after: str | None = None,
    round0_from: str | os.PathLike | None = None,
) -> list[dict]:
    """Run (or continue) the rounds of `cfg` in `run_dir`.

    Args:
        run_dir: the run folder (created; an existing one must hold the same config).
        cfg: the run's configuration.
        resume: continue an existing run (False: refuse a folder that already holds rounds).
        trainer: training/evaluation (default `default_trainer()`).
        oracle: the labelling step (default: reveal the ground truth); not called when
            `cfg.oracle` is "human" (the labels are imported by `claus.annotate`).
        dataset: the opened dataset (default: `cfg.data.open()`); it must be the data
            `cfg.data` names (`dataset.spec`), so the run can be resumed without it.
        progress: progress bars.
        stop_after: for tests of resumption: raise KeyboardInterrupt right after the step named
            "round<r>:<train|eval|score|select|label|commit>" completes, as a kill would.
        round0_from: another run folder (same dataset and seed) whose committed round 0 this
            run may adopt instead of training its own: used when its round 0 was trained with
            the same options on the same labels (checked byte for byte), so the model is the
            one this run would train. Round 0 of every strategy but claus (and full) is the
            same, and a comparison trains it once per seed (`run_experiment`).
    Returns:
        the committed rounds' metric lines (as in RUN/metrics.jsonl).
    Raises:
        RunMismatchError: the folder holds another configuration.
        AwaitingLabels: `cfg.oracle` is "human" and a round's selection has no imported labels
            yet (raised right after the selection is saved, and on every later call until the
            import, before any other work).
    """
    run = Path(run_dir)
    _join_ranks()
    if (run / "config.json").exists():
        check_data(run, cfg.data)  # before opening: a moved root gets its own message
    ds = _dataset(cfg, dataset)
    plan = RunPlan.of(cfg, ds)
    _open_run(run, cfg, resume)
    engine = _Rounds(run, cfg, ds, plan, trainer or default_trainer(), oracle, progress,
                     stop_after)
    done = _committed(run)
    for r in done:
        verify_round(_round_dir(run, r))
        engine.recall(r)
    for r in range(len(plan.percents)):
        if r not in done:
            engine.round(r, round0_from if r == 0 else None)
    if _main():
        _write_metrics(run)  # also after a kill between a commit and its metrics line
    _sync()
    if len(engine.bad) and _main():
        names = engine.bad.names()
        log.warning("%s: %d unreadable video(s) left out: %s%s (round.json lists them under "
                    "\"skipped\")", run, len(names), ", ".join(names[:10]),
                    f", ... ({len(names) - 10} more)" if len(names) > 10 else "")
    return load_metrics(run)


@dataclass(frozen=True)
class RunPlan:
    """What a run does on its dataset, resolved from the config's automatic choices.

    Attributes:
        unit: what budgets count (`claus.data.BUDGET_UNITS`): boxes when the training videos
            are annotated, frames when nobody has labelled them yet (or as configured).
        initial: "reveal" (round 0 trains on a random set revealed from the ground truth, the
            paper's) or "select" (round 0 trains nothing: it selects spread frames of random
            videos, `init_percent` of the budget, and the oracle labels them like any round).
        percents: the labelled % each round trains on ("select": 0 first).
        evaluate: whether the test split has ground truth to evaluate on.
    """

    unit: BudgetUnit
    initial: str
    percents: list[float]
    evaluate: bool

    @classmethod
    def of(cls, cfg: RunConfig, ds: VideoDataset) -> RunPlan:
        annotated = ds.annotated("train")
        unit = BUDGET_UNITS[cfg.budget_unit or ("boxes" if annotated else "frames")]
        initial = cfg.initial_set or ("reveal" if annotated else "select")
        if not annotated and (unit.name == "boxes" or initial == "reveal"
                              or cfg.strategy == "full" or cfg.oracle == "simulated"):
            raise ValueError(
                f"{ds.name}: the training videos have no ground truth, so budgets count frames "
                "(--budget-unit frames), claus selects the initial set (--initial-set select), "
                "people label it (--oracle human) and strategy full cannot run")
        percents = cfg.percents
        if initial == "select" and cfg.strategy != "full":
            percents = [0.0, *percents]
        tested = "test" in ds.splits and bool(ds.split_indices("test"))
        return cls(unit, initial, percents, tested and ds.annotated("test"))


class _Rounds:
    """The steps of one round over a run folder, each resumable: its output file is written
    atomically by rank 0 and read back by every rank; a step whose file exists is skipped."""

    def __init__(self, run: Path, cfg: RunConfig, ds: VideoDataset, plan: RunPlan,
                 trainer: Trainer, oracle: Callable, progress: bool, stop_after: str | None):
        self.run, self.cfg, self.ds, self.plan = run, cfg, ds, plan
        self.trainer, self.oracle, self.progress = trainer, oracle, progress
        self.stop_after = stop_after
        self.train_idx = ds.split_indices("train")
        self.names = [ds[i].name for i in self.train_idx]
        self.geo = trainer.geometry(cfg.training())
        self.model: torch.nn.Module | None = None
        # Unreadable videos of the whole run (each stage's files hold its own, so a resumed
        # run knows them), and those of the round in progress by stage.
        self.bad = BadVideos.of(ds, cfg.training().max_bad_share)
        self.skipped: dict[str, dict] = {}

    def recall(self, r: int) -> None:
        """Remember the unreadable videos a committed round left out."""
        doc = read_json(_round_dir(self.run, r) / "round.json", "round summary")
        for stage, entries in (doc.get("skipped") or {}).items():
            self.bad.add_json(stage, entries, check=False)

    def note_skipped(self, stage: str, entries: dict) -> None:
        """A step's unreadable videos: into the round's summary and the run's ledger (they were
        warned about when found), which checks the run's share."""
        if entries:
            self.skipped[stage] = dict(entries)
            self.bad.add_json(stage, entries)

    def checkpoint(self, step: str, r: int) -> None:
        if self.stop_after == f"round{r}:{step}":
            raise KeyboardInterrupt(f"stopped after {step} of round {r} (stop_after)")

    def round(self, r: int, round0_from: str | os.PathLike | None) -> None:
        t0 = time.perf_counter()
        self.skipped = {}
        work = self.run / f"round_{r:03d}.partial"
        human = self.cfg.oracle == "human"
        if human and _awaits_labels(work):
            raise AwaitingLabels(self.run, r, work)  # nothing to redo until the labels are in
        work.mkdir(parents=True, exist_ok=True)
        labels = self.labels(r, work)
        last = r == len(self.plan.percents) - 1
        metrics: dict = {}
        if labels.num_labelled_frames():
            if round0_from is not None:
                if _main():
                    _adopt_round0(Path(round0_from), work, self.cfg.training())
                _sync()
            self.train(r, work, labels, last)
            self.checkpoint("train", r)
            metrics = self.evaluate(work)
            self.checkpoint("eval", r)
        selection = None
        if not last:
            selection = self.select(r, work, labels)
            self.label(r, work, labels, selection, human)
        self.commit(r, work, labels, metrics, selection, t0)

    def labels(self, r: int, work: Path) -> LabelState:
        """The labels round r trains on: the initial set, or the previous round's."""
        path = work / "labels.json"
        if not path.exists():
            if r > 0:
                labels = LabelState.load(_round_dir(self.run, r - 1) / "next_labels.json",
                                         self.ds)
            elif self.plan.initial == "reveal":
                labels = initial_labels(self.ds, self.cfg)
            else:
                labels = LabelState.empty(self.ds)
            if _main():
                labels.save(path)
        _sync()
        return LabelState.load(path, self.ds)

    def train(self, r: int, work: Path, labels: LabelState, last: bool) -> None:
        """Train (the trainer resumes from its own checkpoint in work/train) and save
        model.pt; skipped when no later step of the round needs the model."""
        cfg, ds = self.cfg, self.ds
        init = None
        if cfg.warm_start and (_round_dir(self.run, r - 1) / "model.pt").exists():
            init = _fresh_model(cfg, ds)
            init.load_weights(_round_dir(self.run, r - 1) / "model.pt")
        train = cfg.training()
        centers = self.centers(work, labels, init) if train.beta > 0 else None
        if _needs_model(work, cfg, last, self.plan.evaluate):
            self.model = self.trainer.fit(train, ds, labels, work / "train", model=init,
                                          centers=centers, progress=self.progress)
        if not (work / "model.pt").exists():
            if _main():
                atomic_torch_save(work / "model.pt", {"model": self.model.state_dict()})
        _sync()
        from .training import METRICS, read_metrics, unreadable_videos

        self.note_skipped("train", unreadable_videos(read_metrics(work / "train" / METRICS)))

    def centers(self, work: Path, labels: LabelState, init) -> torch.Tensor:
        """Cluster loss (claus only): KMeans on the labelled videos' embeddings when training
        starts; the trainer then pulls embeddings to those centres and moves them online."""
        cp = work / "centers.pt"
        if not cp.exists():
            geo, ds = self.geo, self.ds
            start = init if init is not None else _fresh_model(self.cfg, ds)
            lab_idx = [ds.index(n) for n in labels.labelled_videos()]
            ps = score_pool(start, ds, lab_idx, T=geo["T"], stride=geo["stride"],
                            size=geo["size"], device=geo["device"], mode="deterministic",
                            batch_size=self.cfg.score_batch, bad=self.bad)
            emb = ps.embeddings
            if ps.skipped:  # an unreadable video has no embedding to cluster
                emb = emb[[j for j, v in enumerate(lab_idx) if ds[v].name not in ps.skipped]]
            from .cluster import KMeans

            km = KMeans(min(self.cfg.clusters, len(lab_idx)), seed=self.cfg.seed).fit(emb)
            if _main():
                atomic_torch_save(cp, km.cluster_centers_.float())
        _sync()
        return _load_step(cp, "cluster centres")

    def evaluate(self, work: Path) -> dict:
        """Test metrics (scalars only; None = undefined); {} without a labelled test split."""
        path = work / "eval.json"
        if not path.exists():
            metrics = {}
            if self.plan.evaluate:
                metrics = self.trainer.evaluate(self.model, self.ds, self.cfg.training(),
                                                progress=self.progress)
            else:
                log.warning("%s has no labelled test videos: evaluation skipped", self.ds.name)
            out = {k: (None if v is None else float(v)) for k, v in metrics.items()
                   if v is None or isinstance(v, (int, float))}
            if isinstance(metrics.get("skipped"), dict) and metrics["skipped"]:
                out["skipped"] = metrics["skipped"]  # unreadable videos left out
            if _main():
                atomic_write_json(path, out)
        _sync()
        metrics = read_json(path, "round file")
        self.note_skipped("eval", metrics.pop("skipped", {}))
        return metrics

    def select(self, r: int, work: Path, labels: LabelState) -> Selection:
        """Score the pool (strategies that need it) and choose the frames to label next."""
        cfg, ds, unit = self.cfg, self.ds, self.plan.unit
        target = self.plan.percents[r + 1]
        budget = unit.budget(ds, target) - unit.spent(labels)
        if budget < 0:
            raise ValueError(f"round {r}: {unit.spent(labels)} {unit.name} are already "
                             f"labelled, more than the next target {target}%")
        initial = not labels.num_labelled_frames()
        strategy = "equidistant" if initial else cfg.strategy
        pool = None if initial else self.score(r, work)
        self.checkpoint("score", r)
        path = work / "selection.json"
        if not path.exists():
            # Videos found unreadable (this round or before) are not selectable.
            keep = [j for j, n in enumerate(self.names) if n not in self.bad]
            names, idx = [self.names[j] for j in keep], [self.train_idx[j] for j in keep]
            scores, emb, whole = None, None, len(keep) == len(self.names)
            if pool is not None:
                scores = pool.scores if whole else pool.scores.take(keep)
                emb = pool.embeddings if whole else pool.embeddings[keep]
            clusters = None
            if strategy == "claus":
                clusters = _cluster_videos(emb, cfg.clusters, cfg.seed * 1000 + r)
            per_video = max(1, cfg.init_frames_per_video)
            selection = select_round(
                strategy, names=names, num_frames=[ds[i].num_frames for i in idx],
                frame_costs=[unit.costs(ds[i]) for i in idx],
                labelled=[labels.frames(n) for n in names], budget=budget,
                videos_per_round=max(1, budget // per_video) if initial
                else cfg.videos_per_round,
                rng=np.random.default_rng([cfg.seed, r, 3]), scores=scores,
                clusters=clusters, cluster_cap=cfg.cluster_cap)
            out = selection.to_json()
            out.update(budget=budget, budget_unit=unit.name)
            if initial:
                out["initial"] = True
            if clusters is not None:
                out["all_clusters"] = {n: int(c) for n, c in zip(names, clusters, strict=False)}
            if _main():
                atomic_write_json(path, out)
        _sync()
        selection = Selection.from_json(read_json(path, "selection"))
        self.checkpoint("select", r)
        return selection

    def score(self, r: int, work: Path) -> PoolScores | None:
        """Pool scores (frame scores + video embeddings) of the scored strategies."""
        cfg, geo = self.cfg, self.geo
        if cfg.strategy not in SCORED:
            return None
        path = work / "scores.pt"
        if not path.exists():
            ps = score_pool(self.model, self.ds, self.train_idx, T=geo["T"],
                            stride=geo["stride"], size=geo["size"], device=geo["device"],
                            frame_score=cfg.frame_score,
                            mode="deterministic" if cfg.strategy == "entropy" else "mc",
                            passes=cfg.passes, batch_size=cfg.score_batch,
                            seed=int(np.random.SeedSequence([cfg.seed, r, 2])
                                     .generate_state(1)[0]), progress=self.progress,
                            bad=self.bad)
            if _main():
                atomic_torch_save(path, ps.to_state())
        _sync()
        ps = PoolScores.from_state(_load_step(path, "pool scores"))
        self.note_skipped("score", ps.skipped)
        return ps

    def label(self, r: int, work: Path, labels: LabelState, selection: Selection,
              human: bool) -> None:
        """The oracle's labels of the selection (people: raise AwaitingLabels until imported;
        an empty selection needs no annotator)."""
        path = work / "next_labels.json"
        if not path.exists():
            if human and selection.frames:
                raise AwaitingLabels(self.run, r, work)
            new = labels.copy() if human else self.oracle(self.ds, labels, selection, r + 1)
            if _main():
                new.save(path)
        _sync()
        self.checkpoint("label", r)

    def commit(self, r: int, work: Path, labels: LabelState, metrics: dict,
               selection: Selection | None, t0: float) -> None:
        """round.json, then the atomic rename that makes the round visible."""
        cfg, ds, unit = self.cfg, self.ds, self.plan.unit
        summary = {"round": r, "percent": self.plan.percents[r],
                   "labelled_boxes": labels.spent(), "total_boxes": total_boxes(ds),
                   "labelled_videos": len(labels.labelled_videos()),
                   "labelled_frames": labels.num_labelled_frames(), "metrics": metrics,
                   "selected_videos": len(selection.frames) if selection else 0,
                   "selected_boxes": selection.cost if selection else 0,
                   "strategy": cfg.strategy, "seed": cfg.seed,
                   "wall_s": round(time.perf_counter() - t0, 3)}
        if unit.name != "boxes":
            summary.update(budget_unit=unit.name, total_frames=ds.num_frames("train"))
        if self.skipped:
            summary["skipped"] = self.skipped
        if not labels.num_labelled_frames():
            summary["note"] = "initial selection: nothing labelled yet, no model"
        elif not self.plan.evaluate:
            summary["note"] = "no labelled test videos: evaluation skipped"
        marker = work / ROUND0_FROM
        if marker.exists():
            summary["round0_from"] = marker.read_text().strip()
        if _main():
            atomic_write_json(work / MANIFEST, _manifest(work))
            atomic_write_json(work / "round.json", summary)
            # The commit: one atomic rename makes the round visible.
            os.replace(work, _round_dir(self.run, r))
            _write_metrics(self.run)
        _sync()
        log.info("round %d committed: %.2f%% labelled, %s", r, self.plan.percents[r], metrics)
        self.checkpoint("commit", r)


#: What a committed round's results rest on (its folder's files, when present); the
#: round's manifest holds their sha256 so a resume can tell a damaged round from a sound one.
OWNED = ("labels.json", "model.pt", "eval.json", "scores.pt", "centers.pt", "selection.json",
         "next_labels.json", "train/checkpoint.pt")
MANIFEST = "manifest.json"


class DamagedRunError(ValueError):
    """A committed round's file is missing or changed since the round was committed."""


def _manifest(folder: Path) -> dict:
    return {"format": "claus.manifest", "files": {
        name: sha256_file(folder / name) for name in OWNED if (folder / name).is_file()}}


def verify_round(folder: Path) -> None:
    """Check a committed round's files against its manifest (rounds committed before
    manifests existed are not checked).

    Raises:
        DamagedRunError: a file is missing or its content changed; the message names it.
    """
    if not (folder / MANIFEST).is_file():
        return
    files = read_json(folder / MANIFEST, "round manifest").get("files", {})
    for name, sha in files.items():
        path = folder / name
        if not path.is_file():
            raise DamagedRunError(
                f"{path}: missing from committed round {folder.name}; restore it, or delete "
                f"{folder} and the rounds after it to have them recomputed")
        if sha256_file(path) != sha:
            raise DamagedRunError(
                f"{path}: changed since round {folder.name} was committed (sha256 "
                f"{sha[:12]} expected); restore it, or delete {folder} and the rounds after "
                "it to have them recomputed")


#: File in a round folder naming the run whose round 0 it adopted.
ROUND0_FROM = "round0_from.txt"


def _adopt_round0(donor: Path, work: Path, train: TrainConfig) -> str | None:
    """Copy a donor run's trained round 0 (train/, eval.json, model.pt) into `work` when the
    donor trained it with the same options on the same labels; returns the donor or None.

    Each file is copied under a temporary name and renamed, model.pt last, so a kill leaves
    either a round that still trains or one that is complete.
    """
    src = _round_dir(donor, 0)
    if (work / "model.pt").exists() or not all(
            (src / f).exists() for f in ("labels.json", "model.pt", "eval.json")):
        return None
    try:
        donor_cfg = read_run_config(donor)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if (donor_cfg.training() != train
            or (src / "labels.json").read_bytes() != (work / "labels.json").read_bytes()):
        return None
    if (src / "train").is_dir() and not (work / "train").exists():
        tmp = work / "train.adopting"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src / "train", tmp)
        os.replace(tmp, work / "train")
    for name in (ROUND0_FROM, "eval.json", "model.pt"):
        tmp = work / (name + ".adopting")
        if name == ROUND0_FROM:
            tmp.write_text(str(donor) + "\n")
        else:
            shutil.copyfile(src / name, tmp)
        os.replace(tmp, work / name)
    log.info("round 0 adopted from %s (same labels and training options)", donor)
    return str(donor)


def _load_step(path: Path, what: str):
    """A step's tensor file of a round in progress; an unreadable one is an error naming it
    (deleting it has the step recomputed: every step is deterministic given the run)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        raise ValueError(f"{path}: unreadable {what} ({type(exc).__name__}); delete it and "
                         "resume to have it recomputed") from None


def _needs_model(work: Path, cfg: RunConfig, last: bool, evaluate: bool = True) -> bool:
    """Whether a round still has a step that uses its trained model (save, eval, scoring)."""
    done = [work / "model.pt"] + ([work / "eval.json"] if evaluate else [])
    if not last and cfg.strategy in SCORED:
        done.append(work / "scores.pt")
    return not all(p.exists() for p in done)


def _awaits_labels(work: Path) -> bool:
    """Whether a round folder holds a non-empty selection without imported labels."""
    sel = work / "selection.json"
    if not sel.exists() or (work / "next_labels.json").exists():
        return False
    return any(read_json(sel, "selection")["frames"].values())


def _main() -> bool:
    """Whether this process writes the run folder (rank 0 under torch.distributed)."""
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def _join_ranks() -> None:
    """Under `torchrun`, join the process group (once; `claus.training.init_distributed`).

    Every entry point reaches the rounds through `run_rounds`; a rank that has not joined
    would run the whole run alone and write the folder beside rank 0.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from .training import init_distributed

        init_distributed()


def _sync() -> None:
    """Under torch.distributed, wait until rank 0 has written what every rank reads next."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _write_metrics(run: Path) -> None:
    """RUN/metrics.jsonl from the committed rounds' round.json; left untouched when it already
    says that (a finished run resumes without writing anything)."""
    lines = [read_json(_round_dir(run, q) / "round.json", "round summary")
             for q in _committed(run)]
    text = "".join(json.dumps(x, allow_nan=False) + "\n" for x in lines)
    path = run / "metrics.jsonl"
    if path.is_file() and path.read_text(encoding="utf-8", errors="replace") == text:
        return
    atomic_write_text(path, text)


def run_experiment(
    out_dir: str | os.PathLike,
    base: RunConfig,
    strategies: list[str],
    seeds: list[int],
    *,
    include_full: bool = True,
    trainer: Trainer | None = None,
    dataset: VideoDataset | None = None,
    progress: bool = True,
    share_round0: bool = True,
) -> list[dict]:
    """Every (strategy, seed) run of a comparison, each in OUT/<strategy>/seed<k> (resumable).

    Args:
        out_dir: the experiment folder.
        base: the shared configuration (its strategy and seed are replaced per run).
        strategies: strategies to compare (checked before anything runs).
        seeds: run seeds.
        include_full: also run `full` (the upper bound) for every seed.
        share_round0: train round 0 once per seed and training configuration: a run whose
            round 0 has the same labels and options as an earlier run's adopts it
            (`run_rounds(round0_from=...)`; the same model on CPU, marked in round.json).
    Returns:
        all runs' metric lines (each carries its strategy and seed).
    """
    for s in strategies:
        check_strategy(s)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    out = Path(out_dir)
    ds = _dataset(base, dataset)
    trainer = trainer or default_trainer()
    todo = [s for s in strategies if s != "full"] + (["full"] if include_full
                                                     or "full" in strategies else [])
    lines: list[dict] = []
    for seed in seeds:
        donors: dict[str, Path] = {}
        for s in todo:
            cfg = base.replace(strategy=s, seed=seed)
            run = out / s / f"seed{seed}"
            key = json.dumps([cfg.training().to_dict(), s == "full"], sort_keys=True)
            log.info("run %s seed %d", s, seed)
            lines += run_rounds(run, cfg, trainer=trainer, dataset=ds, progress=progress,
                                round0_from=donors.get(key) if share_round0 else None)
            if (_round_dir(run, 0) / "model.pt").exists():
                donors.setdefault(key, run)
    return lines
