"""Active-learning rounds over a run folder: train → evaluate → score → cluster → select →
label → commit.

A run is one strategy with one seed. Round 0 trains on the initial labelled set (default 1% of
the training split's boxes: random videos, a few random frames each, drawn from the seed alone
so every strategy starts from the same labels); each later round adds `step_percent` of the
boxes chosen by the strategy, up to `target_percent`. The last round only trains and evaluates.

Run folder (everything `--resume` needs; `claus.run_folder.RunFolder` owns its layout)::

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

The engine: `run_rounds` opens each round (`open_round`: its folder and labels, a
`RoundContext`) and runs the `STAGES` in order, each a function of that context: `train`,
`evaluate`, `score`, `cluster`, `select`, `label`, `commit`. A stage's output is one file
written by one resumable step (`_step`: computed when missing, written by rank 0, read back by
every rank). What a stage does for a strategy is asked of the strategy object
(`claus.selection.Strategy`: whether it scores the pool and how, whether it clusters, how it
trains, how it picks videos and frames), looked up by the config's strategy name.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from .data.geometry import ClipGeometry
from .device import resolve_device
from .io import atomic_torch_save, atomic_write_json, read_json, remove_stray_temporaries
from .run_folder import DamagedRunError, RoundFolder, RunFolder, experiment_run
from .selection.base import Strategy, get_strategy
from .selection.pool import PoolScores, score_pool
from .selection.strategies import Equidistant, Full, Selection, select_round
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
    "RunFolder",
    "RunPlan",
    "STAGES",
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
            f"{RoundFolder(folder).selection}). Next: export the requests with `python -m "
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
    """The RunConfig stored in an active-learning run folder (`RunFolder.config`)."""
    conf = RunFolder(run_dir).config
    if not conf.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no {conf.name}); check the path")
    try:
        doc = json.loads(conf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{conf}: unreadable ({exc}); restore it or start a new run "
                         "folder") from None
    return RunConfig.from_json(doc, str(conf))


def is_rounds_run(path: str | os.PathLike) -> bool:
    """Whether `path` is an active-learning run folder (its config file is a RunConfig)."""
    conf = RunFolder(path).config
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
        atomic_write_json(RunFolder(run).config, cfg.to_json())
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
                "device": str(resolve_device(train.device))}

    return Trainer(fit=fit, evaluate=evaluate, geometry=geometry)


def initial_labels(ds: VideoDataset, cfg: RunConfig) -> LabelState:
    """The initial labelled set: a function of the dataset and seed only (not the strategy;
    a strategy without selection rounds, `full`, labels everything)."""
    if not get_strategy(cfg.strategy).selects:
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
    """The committed rounds' lines of the run's metrics file (`RunFolder.metrics`)."""
    from .training import read_metrics

    return read_metrics(RunFolder(run_dir).metrics)


#: Fields a resumed run may change (as `config_diff` names them): how many unreadable videos
#: it tolerates changes nothing it computes.
RESUMABLE = ("train.max_bad_share:",)


def _open_run(run: RunFolder, cfg: RunConfig, resume: bool) -> None:
    conf = run.config
    if conf.exists():
        # Fields added to RunConfig since the run was written take their defaults, or the value
        # that reproduces what the run did then (LEGACY_FIELDS, version-1 configs).
        changed = config_diff(read_run_config(run.path).to_json(), cfg.to_json())
        diff = [d for d in changed if not d.startswith(RESUMABLE)]
        if diff:
            raise RunMismatchError(f"run folder {run.path} holds a run with another "
                                   "configuration; differences (stored → requested): "
                                   + "; ".join(diff))
        if changed and _main():  # only what may change on resume: kept for later resumes
            atomic_write_json(conf, cfg.to_json())
        if not resume and run.committed():
            raise FileExistsError(f"run folder {run.path} already holds rounds; pass "
                                  "resume=True (--resume) to continue it or choose another "
                                  "folder")
        if _main():
            for p in remove_stray_temporaries(run.path):  # writes a kill interrupted
                log.info("removed %s, left by an interrupted write", p)
    else:
        run.path.mkdir(parents=True, exist_ok=True)
        if _main():
            write_data_fingerprint(run.path, cfg.data)
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


def _fresh_model(train: TrainConfig, ds: VideoDataset) -> torch.nn.Module:
    from .models import build_model
    from .training import set_seed

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
        cfg: the run's configuration; its strategy is looked up by name among the registered
            ones (`claus.selection.register_strategy` adds one).
        resume: continue an existing run (False: refuse a folder that already holds rounds).
        trainer: training/evaluation (default `default_trainer()`).
        oracle: the labelling step (default: reveal the ground truth); not called when
            `cfg.oracle` is "human" (the labels are imported by `claus.annotate`).
        dataset: the opened dataset (default: `cfg.data.open()`); it must be the data
            `cfg.data` names (`dataset.spec`), so the run can be resumed without it.
        progress: progress bars.
        stop_after: for tests of resumption: raise KeyboardInterrupt, as a kill would, right
            after "round<r>:<stage>" completes (train, eval, score, cluster, select, label,
            commit: the `STAGES`).
        round0_from: another run folder (same dataset and seed) whose committed round 0 this
            run adopts when it was trained with the same options on the same labels (checked
            byte for byte): the model this run would train (`run_experiment` trains round 0
            once per seed and training configuration).
    Returns:
        the committed rounds' metric lines (as in RUN/metrics.jsonl).
    Raises:
        RunMismatchError: the folder holds another configuration.
        AwaitingLabels: `cfg.oracle` is "human" and a round's selection has no imported labels
            yet (raised right after the selection is saved, and on every later call until the
            import, before any other work).
    """
    folder = RunFolder(run_dir)
    _join_ranks()
    if folder.config.exists():
        check_data(folder.path, cfg.data)  # before opening: a moved root gets its own message
    ds = _dataset(cfg, dataset)
    plan = RunPlan.of(cfg, ds)
    _open_run(folder, cfg, resume)
    run = RunContext(folder, cfg, ds, plan, trainer or default_trainer(), oracle, progress,
                     stop_after)
    done = folder.committed()
    for r in done:
        run.recall(r)
    for r in range(len(plan.percents)):
        if r in done:
            continue
        ctx = open_round(run, r, round0_from if r == 0 else None)
        for stage in STAGES:  # train, eval, score, cluster, select, label, commit
            if stage.when(ctx):
                stage.run(ctx)
                run.checkpoint(stage.name, r)
    return run.finish()


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
        strategy: the run's strategy (`claus.selection.Strategy`, registered by name).
        train: how each round trains (the strategy's `training` of the config).
    """

    unit: BudgetUnit
    initial: str
    percents: list[float]
    evaluate: bool
    strategy: Strategy
    train: TrainConfig

    @classmethod
    def of(cls, cfg: RunConfig, ds: VideoDataset) -> RunPlan:
        strategy = get_strategy(cfg.strategy)
        annotated = ds.annotated("train")
        unit = BUDGET_UNITS[cfg.budget_unit or ("boxes" if annotated else "frames")]
        initial = cfg.initial_set or ("reveal" if annotated else "select")
        if not annotated and (unit.name == "boxes" or initial == "reveal"
                              or not strategy.selects or cfg.oracle == "simulated"):
            raise ValueError(
                f"{ds.name}: the training videos have no ground truth, so budgets count frames "
                "(--budget-unit frames), claus selects the initial set (--initial-set select), "
                "people label it (--oracle human) and strategy full cannot run")
        percents = cfg.percents
        if initial == "select" and strategy.selects:
            percents = [0.0, *percents]
        tested = "test" in ds.splits and bool(ds.split_indices("test"))
        return cls(unit, initial, percents, tested and ds.annotated("test"), strategy,
                   strategy.training(cfg))


# ---------------------------------------------------------------------------- the engine
@dataclass
class RunContext:
    """What every round of a run shares: its folder, config, dataset and plan, how it trains
    and labels, and the ledger of unreadable videos (each stage's files hold its own entries,
    so a resumed run knows them)."""

    folder: RunFolder
    cfg: RunConfig
    ds: VideoDataset
    plan: RunPlan
    trainer: Trainer
    oracle: Callable[[VideoDataset, LabelState, Selection, int], LabelState]
    progress: bool = True
    stop_after: str | None = None

    def __post_init__(self) -> None:
        self.train_idx = self.ds.split_indices("train")
        self.names = [self.ds[i].name for i in self.train_idx]
        geo = self.trainer.geometry(self.plan.train)
        # Pool scoring cuts clips as the trainer trained on them, on the trainer's device.
        self.geometry = ClipGeometry(geo["T"], geo["stride"], geo["size"])
        self.device = geo["device"]
        self.bad = BadVideos.of(self.ds, self.plan.train.max_bad_share)

    def recall(self, r: int) -> None:
        """Check committed round r against its manifest and remember the unreadable videos it
        left out."""
        done = self.folder.round(r)
        done.verify()
        doc = read_json(done.summary, "round summary")
        for stage, entries in (doc.get("skipped") or {}).items():
            self.bad.add_json(stage, entries, check=False)

    def checkpoint(self, stage: str, r: int) -> None:
        if self.stop_after == f"round{r}:{stage}":
            raise KeyboardInterrupt(f"stopped after {stage} of round {r} (stop_after)")

    def candidates(self) -> list[int]:
        """Positions in `names` of the videos a selection may take: those found unreadable
        (this round or before) are not selectable."""
        return [j for j, n in enumerate(self.names) if n not in self.bad]

    def finish(self) -> list[dict]:
        """The metrics file (also after a kill between a commit and its line), a warning naming
        the unreadable videos, and the committed rounds' lines."""
        if _main():
            self.folder.write_metrics()
        _sync()
        if len(self.bad) and _main():
            names = self.bad.names()
            log.warning("%s: %d unreadable video(s) left out: %s%s (each round's %s lists them "
                        "under \"skipped\")", self.folder.path, len(names), ", ".join(names[:10]),
                        f", ... ({len(names) - 10} more)" if len(names) > 10 else "",
                        self.folder.round(0).summary.name)
        return load_metrics(self.folder.path)


@dataclass
class RoundContext:
    """One round in progress: its number, folder and labels, and what its stages produced
    (the model, test metrics, the selection's budget and strategy, pool scores, clusters, the
    selection, the unreadable videos each stage left out)."""

    run: RunContext
    r: int
    work: RoundFolder
    labels: LabelState
    round0_from: Path | None = None
    t0: float = 0.0
    model: torch.nn.Module | None = None
    metrics: dict = field(default_factory=dict)
    initial: bool = False
    strategy: Strategy | None = None
    budget: int = 0
    pool: PoolScores | None = None
    clusters: np.ndarray | None = None
    selection: Selection | None = None
    skipped: dict[str, dict] = field(default_factory=dict)

    @property
    def last(self) -> bool:
        """The last round only trains and evaluates."""
        return self.r == len(self.run.plan.percents) - 1

    def note_skipped(self, stage: str, entries: dict) -> None:
        """A stage's unreadable videos: into the round's summary and the run's ledger (they
        were warned about when found), which checks the run's share."""
        if entries:
            self.skipped[stage] = dict(entries)
            self.run.bad.add_json(stage, entries)


def _step(path: Path, compute: Callable[[], Any], save: Callable[[Path, Any], None],
          load: Callable[[Path], Any] | None = None) -> Any:
    """One resumable step: when `path` is missing every rank computes it (the computation may
    be collective) and rank 0 writes it atomically; after a barrier every rank reads it back
    with `load`, so all go on from the bytes a resume would find. A step whose file exists is
    not recomputed."""
    if not path.exists():
        value = compute()
        if _main():
            save(path, value)
    _sync()
    return None if load is None else load(path)


def _json(what: str) -> Callable[[Path], Any]:
    return lambda path: read_json(path, what)


def _tensor(what: str) -> Callable[[Path], Any]:
    return lambda path: _load_step(path, what)


def _save_labels(path: Path, labels: LabelState) -> None:
    labels.save(path)


def open_round(run: RunContext, r: int, round0_from: str | os.PathLike | None) -> RoundContext:
    """Round r's context: its `.partial` folder and the labels it trains on (the initial set,
    or the previous round's new labels). An interactive round whose selection waits for labels
    raises AwaitingLabels before any work."""
    t0 = time.perf_counter()
    work = run.folder.partial(r)
    if run.cfg.oracle == "human" and work.awaits_labels():
        raise AwaitingLabels(run.folder.path, r, work.path)
    work.path.mkdir(parents=True, exist_ok=True)

    def labels() -> LabelState:
        if r > 0:
            return LabelState.load(run.folder.round(r - 1).next_labels, run.ds)
        if run.plan.initial == "reveal":
            return initial_labels(run.ds, run.cfg)
        return LabelState.empty(run.ds)

    got = _step(work.labels, labels, _save_labels, lambda p: LabelState.load(p, run.ds))
    return RoundContext(run, r, work, got, None if round0_from is None else Path(round0_from),
                        t0)


def train(ctx: RoundContext) -> None:
    """Train (the trainer resumes from its own checkpoint in the round's train/) and save
    model.pt; round 0 may adopt a donor run's instead (`round0_from`). The trainer is not
    called when no later step of the round needs the model."""
    run, work = ctx.run, ctx.work
    if ctx.round0_from is not None:
        if _main():
            _adopt_round0(ctx.round0_from, work, run.plan.train)
        _sync()
    init = None
    previous = run.folder.round(ctx.r - 1).model
    if run.cfg.warm_start and previous.exists():
        init = _fresh_model(run.plan.train, run.ds)
        init.load_weights(previous)
    centers = _centers(ctx, init) if run.plan.train.beta > 0 else None
    if _needs_model(ctx):
        ctx.model = run.trainer.fit(run.plan.train, run.ds, ctx.labels, work.train, model=init,
                                    centers=centers, progress=run.progress)
    _step(work.model, lambda: {"model": ctx.model.state_dict()}, atomic_torch_save)
    from .training import METRICS, read_metrics, unreadable_videos

    ctx.note_skipped("train", unreadable_videos(read_metrics(work.train / METRICS)))


def _centers(ctx: RoundContext, init: torch.nn.Module | None) -> torch.Tensor:
    """Cluster loss: KMeans on the labelled videos' embeddings when training starts; the
    trainer then pulls embeddings to those centres and moves them online."""
    run = ctx.run

    def compute() -> torch.Tensor:
        ds = run.ds
        start = init if init is not None else _fresh_model(run.plan.train, ds)
        lab_idx = [ds.index(n) for n in ctx.labels.labelled_videos()]
        ps = score_pool(start, ds, lab_idx, geometry=run.geometry, device=run.device,
                        mode="deterministic", batch_size=run.cfg.score_batch, bad=run.bad)
        emb = ps.embeddings
        if ps.skipped:  # an unreadable video has no embedding to cluster
            emb = emb[[j for j, v in enumerate(lab_idx) if ds[v].name not in ps.skipped]]
        from .cluster import KMeans

        km = KMeans(min(run.cfg.clusters, len(lab_idx)), seed=run.cfg.seed).fit(emb)
        return km.cluster_centers_.float()

    return _step(ctx.work.centers, compute, atomic_torch_save, _tensor("cluster centres"))


def evaluate(ctx: RoundContext) -> None:
    """Test metrics (scalars only; None = undefined); {} without a labelled test split."""
    run = ctx.run

    def compute() -> dict:
        metrics = {}
        if run.plan.evaluate:
            metrics = run.trainer.evaluate(ctx.model, run.ds, run.plan.train,
                                           progress=run.progress)
        else:
            log.warning("%s has no labelled test videos: evaluation skipped", run.ds.name)
        out = {k: (None if v is None else float(v)) for k, v in metrics.items()
               if v is None or isinstance(v, (int, float))}
        if isinstance(metrics.get("skipped"), dict) and metrics["skipped"]:
            out["skipped"] = metrics["skipped"]  # unreadable videos left out
        return out

    ctx.metrics = _step(ctx.work.evaluation, compute, atomic_write_json, _json("round file"))
    ctx.note_skipped("eval", ctx.metrics.pop("skipped", {}))


def _scores_pool(strategy: Strategy) -> bool:
    """Whether a strategy's rounds score the pool (frame scores, or the video embeddings its
    clusters are made of)."""
    return strategy.score is not None or strategy.clusters


def score(ctx: RoundContext) -> None:
    """The selection's budget and strategy (the initial selection, with nothing labelled and
    no model, spaces frames as `equidistant`), then the pool scores (frame scores + video
    embeddings) when that strategy needs them."""
    run, unit = ctx.run, ctx.run.plan.unit
    target = run.plan.percents[ctx.r + 1]
    ctx.budget = unit.budget(run.ds, target) - unit.spent(ctx.labels)
    if ctx.budget < 0:
        raise ValueError(f"round {ctx.r}: {unit.spent(ctx.labels)} {unit.name} are already "
                         f"labelled, more than the next target {target}%")
    ctx.initial = not ctx.labels.num_labelled_frames()
    ctx.strategy = Equidistant() if ctx.initial else run.plan.strategy
    if not _scores_pool(ctx.strategy):
        return
    cfg = run.cfg

    def compute() -> PoolScores:
        seed = np.random.SeedSequence([cfg.seed, ctx.r, 2]).generate_state(1)[0]
        return score_pool(ctx.model, run.ds, run.train_idx, geometry=run.geometry,
                          device=run.device, frame_score=cfg.frame_score,
                          mode=ctx.strategy.scoring, passes=cfg.passes,
                          batch_size=cfg.score_batch, seed=int(seed), progress=run.progress,
                          bad=run.bad)

    ctx.pool = _step(ctx.work.scores, compute, lambda p, ps: atomic_torch_save(p, ps.to_state()),
                     lambda p: PoolScores.from_state(_load_step(p, "pool scores")))
    ctx.note_skipped("score", ctx.pool.skipped)


def cluster(ctx: RoundContext) -> None:
    """KMeans clusters of the selectable videos' embeddings (strategies that cluster), seeded
    by the run and round; they are kept in selection.json, so only computed while the
    selection is not saved."""
    if not ctx.strategy.clusters or ctx.work.selection.exists():
        return
    keep = ctx.run.candidates()
    emb = ctx.pool.embeddings
    if len(keep) < len(ctx.run.names):
        emb = emb[keep]
    cfg = ctx.run.cfg
    ctx.clusters = _cluster_videos(emb, cfg.clusters, cfg.seed * 1000 + ctx.r)


def select(ctx: RoundContext) -> None:
    """The frames to label next: the strategy's choice over the selectable videos, the budget
    spent along it (`select_round`)."""
    run, cfg, ds, unit = ctx.run, ctx.run.cfg, ctx.run.ds, ctx.run.plan.unit

    def compute() -> dict:
        keep = run.candidates()
        names, idx = [run.names[j] for j in keep], [run.train_idx[j] for j in keep]
        scores = None
        if ctx.pool is not None:
            whole = len(keep) == len(run.names)
            scores = ctx.pool.scores if whole else ctx.pool.scores.take(keep)
        per_video = max(1, cfg.init_frames_per_video)
        selection = select_round(
            ctx.strategy, names=names, num_frames=[ds[i].num_frames for i in idx],
            frame_costs=[unit.costs(ds[i]) for i in idx],
            labelled=[ctx.labels.frames(n) for n in names], budget=ctx.budget,
            videos_per_round=max(1, ctx.budget // per_video) if ctx.initial
            else cfg.videos_per_round,
            rng=np.random.default_rng([cfg.seed, ctx.r, 3]), scores=scores,
            clusters=ctx.clusters, cluster_cap=cfg.cluster_cap)
        out = selection.to_json()
        out.update(budget=ctx.budget, budget_unit=unit.name)
        if ctx.initial:
            out["initial"] = True
        if ctx.clusters is not None:
            out["all_clusters"] = {n: int(c) for n, c in zip(names, ctx.clusters, strict=False)}
        return out

    ctx.selection = _step(ctx.work.selection, compute, atomic_write_json,
                          lambda p: Selection.from_json(read_json(p, "selection")))


def label(ctx: RoundContext) -> None:
    """The oracle's labels of the selection (people: raise AwaitingLabels until imported; an
    empty selection needs no annotator)."""
    run = ctx.run
    human = run.cfg.oracle == "human"

    def compute() -> LabelState:
        if human and ctx.selection.frames:
            raise AwaitingLabels(run.folder.path, ctx.r, ctx.work.path)
        if human:
            return ctx.labels.copy()
        return run.oracle(run.ds, ctx.labels, ctx.selection, ctx.r + 1)

    _step(ctx.work.next_labels, compute, _save_labels)


def commit(ctx: RoundContext) -> None:
    """The round's summary, then the atomic rename that makes the round visible
    (`RunFolder.commit`)."""
    run = ctx.run
    summary = _summary(ctx)
    if _main():
        run.folder.commit(ctx.work, summary)
    _sync()
    log.info("%s", round_line(summary))


def _num(x: float | None) -> str:
    return f"{x:5.1f}" if isinstance(x, (int, float)) else f"{'–':>5}"


def round_line(summary: dict) -> str:
    """One aligned line of a committed round for the log: strategy and seed, round, % and
    boxes labelled, f-mAP@0.5, v-mAP@0.5, accuracy (in %; – where not measured), seconds."""
    m = summary.get("metrics") or {}
    return (f"{summary.get('strategy', '?')} seed {summary.get('seed', '?')} "
            f"round {summary['round']:>2}: {summary['percent']:5.2f}% labelled "
            f"({summary['labelled_boxes']:,} of {summary['total_boxes']:,} boxes)  "
            f"f-mAP@0.5 {_num(m.get('f-mAP@0.5'))}  v-mAP@0.5 {_num(m.get('v-mAP@0.5'))}  "
            f"accuracy {_num(m.get('accuracy'))}  {summary['wall_s']:6.0f} s")


def _summary(ctx: RoundContext) -> dict:
    """round.json: the round's budget, labels, metrics, selection and the videos it skipped."""
    run, labels, sel = ctx.run, ctx.labels, ctx.selection
    ds, unit = run.ds, run.plan.unit
    out = {"round": ctx.r, "percent": run.plan.percents[ctx.r],
           "labelled_boxes": labels.spent(), "total_boxes": total_boxes(ds),
           "labelled_videos": len(labels.labelled_videos()),
           "labelled_frames": labels.num_labelled_frames(), "metrics": ctx.metrics,
           "selected_videos": len(sel.frames) if sel else 0,
           "selected_boxes": sel.cost if sel else 0,
           "strategy": run.cfg.strategy, "seed": run.cfg.seed,
           "wall_s": round(time.perf_counter() - ctx.t0, 3)}
    if unit.name != "boxes":
        out.update(budget_unit=unit.name, total_frames=ds.num_frames("train"))
    if ctx.skipped:
        out["skipped"] = ctx.skipped
    if not labels.num_labelled_frames():
        out["note"] = "initial selection: nothing labelled yet, no model"
    elif not run.plan.evaluate:
        out["note"] = "no labelled test videos: evaluation skipped"
    if ctx.work.round0_from.exists():
        out["round0_from"] = ctx.work.round0_from.read_text().strip()
    return out


def _trains(ctx: RoundContext) -> bool:
    return bool(ctx.labels.num_labelled_frames())


def _selects(ctx: RoundContext) -> bool:
    return not ctx.last


@dataclass(frozen=True)
class Stage:
    """A stage of a round: `run` when `when` holds; `name` is what `stop_after` and the log
    call it."""

    name: str
    when: Callable[[RoundContext], bool]
    run: Callable[[RoundContext], None]


#: A round, in order: a round with labels trains and evaluates; every round but the last
#: scores, clusters, selects and labels; every round commits.
STAGES = (
    Stage("train", _trains, train),
    Stage("eval", _trains, evaluate),
    Stage("score", _selects, score),
    Stage("cluster", _selects, cluster),
    Stage("select", _selects, select),
    Stage("label", _selects, label),
    Stage("commit", lambda ctx: True, commit),
)


def verify_round(folder: str | os.PathLike) -> None:
    """Check a committed round's files against its manifest (rounds committed before
    manifests existed are not checked).

    Raises:
        DamagedRunError: a file is missing or its content changed; the message names it.
    """
    RoundFolder(folder).verify()


def _adopting(path: Path) -> Path:
    """Where a file is copied before its rename into place."""
    return path.with_name(path.name + ".adopting")


def _adopt_round0(donor: str | os.PathLike, work: str | os.PathLike,
                  train: TrainConfig) -> str | None:
    """Copy a donor run's trained round 0 (train/, eval.json, model.pt) into `work` when the
    donor trained it with the same options on the same labels; returns the donor or None.

    Each file is copied under a temporary name and renamed, model.pt last, so a kill leaves
    either a round that still trains or one that is complete.
    """
    src, dst = RunFolder(donor).round(0), RoundFolder(work)
    if dst.model.exists() or not all(p.exists() for p in (src.labels, src.model,
                                                          src.evaluation)):
        return None
    try:
        donor_cfg = read_run_config(donor)
        donor_train = get_strategy(donor_cfg.strategy).training(donor_cfg)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if donor_train != train or src.labels.read_bytes() != dst.labels.read_bytes():
        return None
    if src.train.is_dir() and not dst.train.exists():
        tmp = _adopting(dst.train)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src.train, tmp)
        os.replace(tmp, dst.train)
    for target, source in ((dst.round0_from, None), (dst.evaluation, src.evaluation),
                           (dst.model, src.model)):
        tmp = _adopting(target)
        if source is None:
            tmp.write_text(str(donor) + "\n")
        else:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
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


def _needs_model(ctx: RoundContext) -> bool:
    """Whether the round still has a step that uses its trained model (save, eval, scoring)."""
    work, plan = ctx.work, ctx.run.plan
    done = [work.model] + ([work.evaluation] if plan.evaluate else [])
    if not ctx.last and _scores_pool(plan.strategy):
        done.append(work.scores)
    return not all(p.exists() for p in done)


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
    objs = {s: get_strategy(s) for s in strategies}
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    ds = _dataset(base, dataset)
    trainer = trainer or default_trainer()
    # The strategies that select first, then the upper bounds (full) once each.
    upper = [s for s in objs if not objs[s].selects]
    if include_full and Full.name not in upper:
        upper.append(Full.name)
    todo = [s for s in strategies if objs[s].selects] + upper
    lines: list[dict] = []
    for seed in seeds:
        donors: dict[str, Path] = {}
        for s in todo:
            cfg = base.replace(strategy=s, seed=seed)
            run = experiment_run(out_dir, s, seed)
            strategy = get_strategy(s)
            key = json.dumps([strategy.training(cfg).to_dict(), not strategy.selects],
                             sort_keys=True)
            log.info("run %s seed %d", s, seed)
            lines += run_rounds(run, cfg, trainer=trainer, dataset=ds, progress=progress,
                                round0_from=donors.get(key) if share_round0 else None)
            if RunFolder(run).round(0).model.exists():
                donors.setdefault(key, run)
    return lines
