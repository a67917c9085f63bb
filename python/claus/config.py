"""The one run configuration of claus: what data, how to train, how labels are chosen.

Four dataclasses, one flat namespace of fields shared by the command-line flags and the config
files (YAML or JSON) of every command:

- `DatasetSpec` (`claus.data.registry`, beside the readers it names): which data a run opens
  (dataset name, root, frame store, split, synthetic preset and seed). Saved in every run
  folder with a fingerprint of the annotation files (`RUN/dataset.json`), so `--resume`
  reopens exactly that data or says why it cannot.
- `claus.training.TrainConfig`: how a detector trains (shared by both run kinds).
- `RunConfig`: one active-learning run (strategy, budgets, scoring, clusters, oracle) with its
  `DatasetSpec` and `TrainConfig`.
- `RunSpec`: one supervised run (its `DatasetSpec` and which labels it trains on).
- `ExperimentSpec`: which runs an experiment makes of a `RunConfig` (strategies, seeds).

`FIELDS` lists every field once with its flat name, flags, type and help; `add_arguments`
makes the flags of a parser from it and `load_config_file` + `merge_values` read config files
in the same names. Precedence: dataclass defaults < the dataset's training defaults
(`claus.data.TRAIN_DEFAULTS`) < config file < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .conversion import build as _build
from .conversion import convert
from .conversion import meta as _meta
from .data.registry import DatasetSpec, train_defaults
from .io import atomic_write_json
from .selection import STRATEGIES, check_strategy, get_strategy
from .selection.criteria import check_frame_score
from .selection.strategies import CLAUS_BETA
from .training import TRAIN_HELP, TrainConfig

__all__ = [
    "CLAUS_BETA",
    "DEFAULT_FRAME_SCORE",
    "DataMovedError",
    "DatasetSpec",
    "ExperimentSpec",
    "FIELDS",
    "Field",
    "LEGACY_FIELDS",
    "ORACLES",
    "RunConfig",
    "RunSpec",
    "add_arguments",
    "check_data",
    "convert",
    "flag",
    "load_config_file",
    "write_data_fingerprint",
]

FORMAT = "claus.run"
VERSION = 2

#: Frame score of `uncertainty` and `claus` runs (`claus.selection.FRAME_SCORES`): "mass", not
#: the paper's "mean", which on the demo spent a third of claus's frames on frames without an
#: actor and left claus below random (README, "Frame score").
DEFAULT_FRAME_SCORE = "mass"
#: Values of fields added to RunConfig after runs were written without them: what those runs
#: did, so that resuming one continues it unchanged whatever the current defaults are.
LEGACY_FIELDS = {"frame_score": "mean"}

ORACLES = {
    "simulated": "reveal the ground truth of the selected frames (simulation)",
    "human": "stop after each selection until people's boxes are imported (claus.annotate)",
}
PROTOCOLS = ("act", "localization")


def _strategy_names() -> str:
    """The registered strategies, for the help of --strategy (read when the help is made)."""
    return "registered: " + ", ".join(STRATEGIES)


#: File of a run folder holding the `DatasetSpec` it was started on and its fingerprint.
DATA_FILE = "dataset.json"


class DataMovedError(ValueError):
    """A run's data is not where, or not what, it was when the run started."""


def write_data_fingerprint(run_dir: str | Path, spec: DatasetSpec) -> dict:
    """Save `spec` and its fingerprint as RUN/dataset.json (atomically); returns the record."""
    record = {"spec": spec.to_json(), **spec.fingerprint()}
    atomic_write_json(Path(run_dir) / DATA_FILE, record)
    return record


def check_data(run_dir: str | Path, spec: DatasetSpec) -> None:
    """Refuse to reopen a run on data that moved or changed since it started.

    Raises:
        DataMovedError: the root or store is gone (the message says how to point the run at
            the new place), or an annotation file's content differs from the one the run
            started on (RUN/dataset.json).
    """
    run_dir = Path(run_dir)
    for key, flag in (("root", "--root"), ("store", "--store")):
        where = getattr(spec, key)
        if where is not None and not Path(where).exists():
            raise DataMovedError(
                f"{run_dir}: the run's dataset {key} {where} does not exist (moved or "
                f"deleted?); resume with {flag} NEW_PATH to point the run at its new place")
    record_path = run_dir / DATA_FILE
    if not record_path.is_file():
        return  # a run written before the fingerprint existed
    try:
        stored = json.loads(record_path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataMovedError(f"{record_path}: unreadable ({exc}); restore it from the run's "
                             "backup or start a new run folder") from None
    now = spec.fingerprint()["files"]
    changed = sorted(n for n in set(stored) | set(now) if stored.get(n) != now.get(n))
    if changed:
        what = ", ".join(f"{n} (sha256 {str(stored.get(n))[:12]} → {str(now.get(n))[:12]})"
                         for n in changed)
        raise DataMovedError(
            f"{spec.root}: the annotation files differ from those the run in {run_dir} started "
            f"on: {what}; point --root at the original data or start a new run folder")


# ---------------------------------------------------------------------------- run kinds
@dataclass
class RunConfig:
    """One active-learning run.

    Attributes:
        data: the dataset (`DatasetSpec`; default the synthetic demo preset).
        strategy: one of `claus.selection.STRATEGIES`.
        seed: the run seed (initial set, training, dropout masks, every random choice); the
            training seed is always this seed.
        init_percent, step_percent, target_percent: budgets in % of the training split's boxes.
        init_frames_per_video: frames per video of the initial random set.
        videos_per_round: V (None: each chosen video gets ~5% of its frames).
        passes: R, MC-dropout passes of pool scoring. score_batch: windows per scoring forward.
        frame_score: how uncertainty and claus score a frame (`claus.selection.FRAME_SCORES`).
        clusters: K for `claus`; cluster_cap: largest share of labelled videos in one cluster.
        beta: cluster-loss weight of `claus` (None: `CLAUS_BETA`; 0 = off); other strategies
            train without the cluster loss.
        warm_start: start each round from the previous round's weights (default: same init).
        oracle: who labels the selections: "simulated" (ground truth) or "human" (`ORACLES`).
        budget_unit: "boxes", "frames" or None (boxes; frames for unlabelled training videos);
            see `claus.rounds.RunPlan`.
        initial_set: "reveal", "select" or None (reveal; select for unlabelled training
            videos): how round 0 gets its labels (`claus.rounds.RunPlan`).
        train: how each round trains (`claus.training.TrainConfig`). A mapping (or None) is
            read as overrides of the dataset's training defaults (`claus.data.TRAIN_DEFAULTS`);
            an unknown or mistyped field is an error naming it.
    """

    data: DatasetSpec = field(default_factory=DatasetSpec)
    strategy: str = field(default="claus", metadata=_meta(
        "selection strategy of the run", flags=("--strategy",), choices=_strategy_names))
    seed: int = field(default=0, metadata=_meta("seed of the run"))
    init_percent: float = field(default=1.0, metadata=_meta(
        "initial labelled % of the training boxes", flags=("--init",)))
    step_percent: float = field(default=1.0, metadata=_meta(
        "% of the training boxes added per round", flags=("--step",)))
    target_percent: float = field(default=5.0, metadata=_meta(
        "final labelled % of the training boxes", flags=("--target",)))
    init_frames_per_video: int = field(default=3, metadata=_meta(
        "frames per video of the initial random set"))
    videos_per_round: int | None = field(default=None, metadata=_meta(
        "V, videos chosen per round (none: each chosen video gets ~5% of its frames)"))
    passes: int = field(default=10, metadata=_meta("MC-dropout passes R of pool scoring"))
    score_batch: int = field(default=16, metadata=_meta("windows per pool-scoring forward"))
    frame_score: str = field(default=DEFAULT_FRAME_SCORE, metadata=_meta(
        "frame score of uncertainty and claus: mass (foreground uncertainty / frame pixels) "
        "or mean (the paper's, over the foreground)"))
    clusters: int = field(default=5, metadata=_meta("K, video clusters of claus"))
    cluster_cap: float | None = field(default=None, metadata=_meta(
        "largest share of labelled videos in one cluster (paper: 0.54)"))
    beta: float | None = field(default=None, metadata=_meta(
        f"cluster-loss weight of claus (none: {CLAUS_BETA}; 0 = off)"))
    warm_start: bool = field(default=False, metadata=_meta(
        "start each round from the previous round's weights"))
    oracle: str = field(default="simulated", metadata=_meta(
        "who labels: " + "; ".join(f"{k}: {v}" for k, v in ORACLES.items())))
    budget_unit: str | None = field(default=None, metadata=_meta(
        "what budgets count: boxes (ground-truth boxes of the training split, the paper's) or "
        "frames; none: boxes, or frames when the training videos are unlabelled"))
    initial_set: str | None = field(default=None, metadata=_meta(
        "round 0's labels: reveal (random videos and frames, revealed from the ground truth) "
        "or select (claus picks spread frames of random videos and the oracle labels them "
        "like any round); none: reveal, or select when the training videos are unlabelled"))
    train: TrainConfig | Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            self.data = DatasetSpec(self.data)
        elif isinstance(self.data, Mapping):
            self.data = DatasetSpec.from_json(self.data, "RunConfig.data")
        if self.train is None or isinstance(self.train, Mapping):
            self.train = TrainConfig.from_dict(
                {**train_defaults(self.data.name), **(self.train or {})}, "RunConfig.train")
        if not isinstance(self.train, TrainConfig):
            raise TypeError(f"RunConfig.train must be a TrainConfig or a mapping of its "
                            f"fields, got {type(self.train).__name__}")
        if self.train.beta and self.beta is None:
            self.beta = self.train.beta  # the cluster loss is the run's (`beta`), not the trainer's
        # One seed per run: the trainer's is the run's.
        self.train = self.train.replace(seed=int(self.seed), beta=0.0)
        check_strategy(self.strategy)
        if self.oracle not in ORACLES:
            raise ValueError(f"--oracle: unknown oracle {self.oracle!r}; choices: "
                             + "; ".join(f"{k}: {v}" for k, v in ORACLES.items()))
        _check(0 < self.init_percent <= 100, "--init", "must be in (0, 100]", self.init_percent)
        _check(self.target_percent <= 100, "--target", "must be <= 100", self.target_percent)
        _check(self.target_percent >= self.init_percent, "--target",
               f"is below the initial labelled set ({self.init_percent}%)", self.target_percent)
        _check(self.step_percent > 0, "--step", "must be > 0", self.step_percent)
        _check(self.init_frames_per_video >= 1, "--init-frames-per-video", "must be >= 1",
               self.init_frames_per_video)
        _check(self.passes >= 1, "--passes", "must be >= 1", self.passes)
        _check(self.score_batch >= 1, "--score-batch", "must be >= 1", self.score_batch)
        check_frame_score(self.frame_score, "--frame-score")
        _check(self.clusters >= 1, "--clusters", "must be >= 1", self.clusters)
        _check(self.cluster_cap is None or 0 < self.cluster_cap <= 1, "--cluster-cap",
               "must be in (0, 1]", self.cluster_cap)
        _check(self.videos_per_round is None or self.videos_per_round >= 1,
               "--videos-per-round", "must be >= 1", self.videos_per_round)
        _check(self.beta is None or (math.isfinite(self.beta) and self.beta >= 0), "--beta",
               "must be >= 0", self.beta)
        _check(self.budget_unit in (None, "boxes", "frames"), "--budget-unit",
               "must be boxes or frames", self.budget_unit)
        _check(self.initial_set in (None, "reveal", "select"), "--initial-set",
               "must be reveal or select", self.initial_set)

    @property
    def percents(self) -> list[float]:
        """Labelled % of boxes each round trains on ([100] for a strategy without selection
        rounds, `full`)."""
        if not get_strategy(self.strategy).selects:
            return [100.0]
        n = int(math.floor((self.target_percent - self.init_percent) / self.step_percent + 1e-9))
        out = [round(self.init_percent + r * self.step_percent, 6) for r in range(n + 1)]
        if out[-1] < self.target_percent - 1e-9:
            out.append(float(self.target_percent))
        return out

    def training(self) -> TrainConfig:
        """The TrainConfig each round trains with: the strategy's (`Strategy.training`): `train`
        with the run seed, plus the strategy's extras (the cluster loss of claus: `beta`,
        default `CLAUS_BETA`; none for the other built-ins, so `uncertainty` is exactly `claus`
        without clusters)."""
        return get_strategy(self.strategy).training(self)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        out = {"format": FORMAT, "version": VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_json() if f.name == "data" else (
                value.to_dict() if f.name == "train" else value)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any], source: str = "config.json") -> RunConfig:
        """A RunConfig from its JSON (this version's, or a version-1 run's: flat dataset
        fields and a mapping of training overrides, read as that version ran them)."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            fmt = d.get("format") if isinstance(d, Mapping) else type(d).__name__
            raise ValueError(f"{source}: not a claus run config (format {fmt!r})")
        d = dict(d)
        if d.get("version", 1) == 1:
            d = _upgrade_v1(d)
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in {**LEGACY_FIELDS, **d}.items() if k in names}
        kw["data"] = DatasetSpec.from_json(kw.get("data") or {}, source)
        if isinstance(kw.get("train"), Mapping):
            kw["train"] = TrainConfig.from_dict(
                {k: v for k, v in kw["train"].items() if k != "beta"}, source)
        return _build(cls, kw, source, convert_nested=False)


def _upgrade_v1(d: dict) -> dict:
    """Version-1 run configs: dataset/preset/data_seed at the top and `train` holding only the
    overrides, with the dataset's defaults and the claus beta filled in at run time."""
    name = d.pop("dataset", "synthetic")
    data = {"name": name, "preset": d.pop("preset", None) if name.startswith("synthetic")
            else None, "seed": d.pop("data_seed", 0)}
    d.pop("preset", None)
    train = dict(d.get("train") or {})
    if "beta" in train:
        d["beta"] = train.pop("beta")
    train.pop("seed", None)
    d["train"] = {**train_defaults(name), **train}
    d["data"] = data
    d["version"] = VERSION
    return d


def _check(ok: bool, flag: str, what: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{flag}: {what}, got {value!r}")


@dataclass
class RunSpec:
    """One supervised run (`python -m claus.train` without a strategy): its data and labels.

    Attributes:
        data: the dataset.
        labels: "full" (every training frame) or a label-state JSON file; ignored with budget.
        budget: percent of the training boxes, labelled on random videos (seeded by the
            training seed), e.g. 5.
        protocol: "act" or "localization" for the final evaluation.
    """

    data: DatasetSpec = field(default_factory=DatasetSpec)
    labels: str | None = field(default="full", metadata=_meta(
        "'full' (every training frame labelled) or a label-state JSON file"))
    budget: float | None = field(default=None, metadata=_meta(
        "label a random PCT percent of the training boxes (e.g. 5)"))
    protocol: str = field(default="act", metadata=_meta(
        "final evaluation protocol: act or localization"))

    def __post_init__(self) -> None:
        if isinstance(self.data, Mapping):
            self.data = DatasetSpec.from_json(self.data, "RunSpec.data")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"--protocol: must be one of {PROTOCOLS}, got {self.protocol!r}")
        _check(self.budget is None or (math.isfinite(self.budget) and 0 < self.budget <= 100),
               "--budget", "must be a percentage in (0, 100]", self.budget)
        if self.labels is not None and self.labels != "full":
            self.labels = str(Path(self.labels).expanduser().absolute())


@dataclass
class ExperimentSpec:
    """Which runs an experiment makes: every strategy × seed, each in OUT/<strategy>/seed<k>.

    Attributes:
        strategies: the strategies compared.
        seeds: number of seeds; first_seed: the first (seeds run first_seed .. +seeds-1).
        full: also run `full` (every label: the upper bound) per seed.
        share_round0: train round 0 once per seed and training configuration.
        out: the experiment folder.
    """

    strategies: list[str] = field(default_factory=lambda: ["random", "claus"], metadata=_meta(
        "strategies to compare", flags=("--strategy",), choices=_strategy_names))
    seeds: int = field(default=1, metadata=_meta("number of seeds"))
    first_seed: int = field(default=0, metadata=_meta(
        "first seed (seeds FIRST..FIRST+n-1; split an experiment over processes); --seed K "
        "is the same"))
    full: bool = field(default=True, metadata=_meta(
        "also run the full-label upper bound per seed (python -m claus.train: false)",
        flags=("--no-full",)))
    share_round0: bool = field(default=True, metadata=_meta(
        "train round 0 once per seed for the strategies that train it alike",
        flags=("--no-share-round0",)))
    out: str = field(default="runs/experiment", metadata=_meta("experiment folder"))

    def __post_init__(self) -> None:
        if isinstance(self.strategies, str):
            self.strategies = [self.strategies]
        self.strategies = [str(s) for s in self.strategies]
        if not self.strategies:
            raise ValueError("--strategies: name at least one strategy")
        for s in self.strategies:
            check_strategy(s)
        _check(self.seeds >= 1, "--seeds", "must be >= 1", self.seeds)
        _check(self.first_seed >= 0, "--first-seed", "must be >= 0", self.first_seed)

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))


# ---------------------------------------------------------------------------- the field table
@dataclass(frozen=True)
class Field:
    """One configuration field: its flat `name` (in files; flags are its dashed spelling plus
    `flags`), the dataclass that owns it (`owner`, attribute `attr`), type and help."""

    name: str
    owner: type
    attr: str
    type: str
    default: Any
    help: str
    flags: tuple[str, ...]
    #: The values the field takes, as a line for its help, read when the help is made (the
    #: registered strategies: one registered after this module loaded is listed too).
    choices: Callable[[], str] | None = None

    def describe(self) -> str:
        """The help with the current choices."""
        return self.help if self.choices is None else f"{self.help} ({self.choices()})"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def convert(self, value: Any, source: str) -> Any:
        return convert(self.type, self.name, value, source)


#: Fields that are not flags or file fields of their own: the cluster-loss weight belongs to
#: active learning (`RunConfig.beta`); a run's strategy and seed come from the experiment's
#: strategies and seeds (`seed`, the training group's, names the first seed there).
_NOT_FIELDS = {"TrainConfig": ("beta",), "RunConfig": ("strategy", "seed")}


def _fields_of(owner: type) -> list[Field]:
    out = []
    skip = _NOT_FIELDS.get(owner.__name__, ())
    for f in fields(owner):
        if f.name in skip or f.name in ("data", "train"):
            continue
        meta = f.metadata or {}
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out.append(Field(name=meta.get("name") or f.name, owner=owner, attr=f.name,
                         type=str(f.type), default=default,
                         help=meta.get("help") or TRAIN_HELP.get(f.name, f.name),
                         flags=tuple(meta.get("flags") or ()), choices=meta.get("choices")))
    return out


def _all_fields() -> dict[str, list[Field]]:
    return {
        "data": _fields_of(DatasetSpec),
        "active learning": _fields_of(RunConfig),
        "experiment": _fields_of(ExperimentSpec),
        "labels (supervised runs)": _fields_of(RunSpec),
        "training": _fields_of(TrainConfig),
    }


#: Every configuration field by group (flat names are unique across groups, except `strategy`
#: of a run and `strategies` of an experiment, which share the --strategy flag).
FIELDS: dict[str, list[Field]] = _all_fields()
_BY_NAME: dict[str, Field] = {f.name: f for group in FIELDS.values() for f in group}


def flag(name: str) -> str:
    """The command-line flag of a field's flat name (`target_percent` → `--target-percent`)."""
    return _BY_NAME[name].flag


def field_names(*groups: str) -> list[str]:
    return [f.name for g in groups for f in FIELDS[g]]


# ---------------------------------------------------------------------------- flags and files
def add_arguments(parser: argparse.ArgumentParser, groups: Iterable[str],
                  title: dict[str, str] | None = None) -> None:
    """Add the flags of the named `FIELDS` groups to `parser`, all defaulting to None (so
    what was given can be told from what was not). Bool fields take an optional value
    (`--warm-start`, `--amp false`); lists take one or more values."""
    for group in groups:
        g = parser.add_argument_group((title or {}).get(group, group))
        for f in FIELDS[group]:
            flags = [f.flag, *(x for x in f.flags if x != f.flag and not x.startswith("--no-"))]
            for neg in (x for x in f.flags if x.startswith("--no-")):
                g.add_argument(neg, dest=f.name, action="store_const", const="false",
                               help=f"same as {f.flag} false")
            kw: dict[str, Any] = {"dest": f.name, "default": None}
            if f.type.startswith("bool"):
                kw.update(nargs="?", const="true", metavar="BOOL")
            elif f.type.startswith("list"):
                kw.update(nargs="+", metavar="NAME")
            else:
                kw.update(metavar="V")
            default = ", ".join(f.default) if isinstance(f.default, list) else f.default
            g.add_argument(*flags, help=f"{f.describe()} [{default}]".replace("%", "%%"), **kw)


def given(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The fields among `names` given on the command line, converted to their types."""
    out = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            out[name] = _BY_NAME[name].convert(value, _BY_NAME[name].flag)
    return out


def load_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A flat mapping of field names from a YAML (.yaml/.yml) or JSON file; errors name the
    file. Names are `FIELDS`' (`strategy` is read as `strategies`); unknown names are errors.
    `_base_: FILE` (or a list of files, relative to this one) composes configs, as
    mmaction2's do: the bases' fields first, this file's over them."""
    path = Path(path)
    if path.resolve() in _seen:
        raise ValueError(f"{path}: _base_ files include each other in a loop")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file does not exist; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the config file ({exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            raise ValueError(f"{path}: not valid YAML{at}; fix the file") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    out: dict[str, Any] = {}
    bases = data.pop("_base_", None) or []
    for base in [bases] if isinstance(bases, str) else bases:
        out.update(load_config_file(path.parent / str(base), (*_seen, path.resolve())))
    for key, value in data.items():
        name = "strategies" if key == "strategy" else str(key)
        if name not in _BY_NAME:
            raise ValueError(f"{path}: unknown field {key!r}; fields: {', '.join(_BY_NAME)}")
        out[name] = _BY_NAME[name].convert(value, str(path))
    return out


def dataset_spec(values: Mapping[str, Any], source: str = "config") -> DatasetSpec:
    """The `DatasetSpec` of flat values (dataset, root, store, split, preset, data_seed)."""
    return DatasetSpec.from_json({k: values[k] for k in field_names("data") if k in values},
                                 source)


def train_config(values: Mapping[str, Any], dataset: str, source: str = "config"
                 ) -> TrainConfig:
    """The `TrainConfig` of flat values over the dataset's training defaults."""
    picked = {k: values[k] for k in field_names("training") if k in values}
    return TrainConfig.from_dict({**train_defaults(dataset), **picked}, source)


def run_config(values: Mapping[str, Any], strategy: str, seed: int,
               source: str = "config") -> RunConfig:
    """The `RunConfig` of one (strategy, seed) from flat values."""
    data = dataset_spec(values, source)
    kw = {k: _BY_NAME[k].convert(values[k], source) for k in field_names("active learning")
          if k in values}
    return RunConfig(data=data, train=train_config(values, data.name, source),
                     strategy=strategy, seed=seed, **kw)


def experiment_spec(values: Mapping[str, Any], source: str = "config") -> ExperimentSpec:
    """The `ExperimentSpec` of flat values (`seed` is the first seed when `first_seed` is
    not given)."""
    values = dict(values)
    if "seed" in values:
        if "first_seed" in values and values["first_seed"] != values["seed"]:
            raise ValueError(f"{source}: seed {values['seed']} and first_seed "
                             f"{values['first_seed']} disagree; give one of them")
        values["first_seed"] = values["seed"]
    return _build(ExperimentSpec, {k: values[k] for k in field_names("experiment")
                                   if k in values}, source)


def run_spec(values: Mapping[str, Any], source: str = "config") -> tuple[RunSpec, TrainConfig]:
    """The supervised `RunSpec` and its `TrainConfig` from flat values."""
    data = dataset_spec(values, source)
    picked = {k: values[k] for k in field_names("labels (supervised runs)") if k in values}
    spec = RunSpec(data=data, **picked)
    return spec, train_config(values, data.name, source)


def flat_values(spec: RunSpec, cfg: TrainConfig) -> dict[str, Any]:
    """A supervised run's config as flat fields (what RUN/config.yaml holds)."""
    out = {f.name: getattr(spec.data, f.attr) for f in FIELDS["data"]}
    out.update({f.name: getattr(spec, f.attr) for f in FIELDS["labels (supervised runs)"]})
    out.update(cfg.to_dict())
    out.pop("beta", None)
    return out
