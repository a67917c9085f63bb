"""A supervised training run as a folder: what `python -m claus.train` / `claus.evaluate` do.

    RUN/
      config.yaml      the run spec (dataset, labels) and every TrainConfig field (config.json
                       when PyYAML is missing); `--resume RUN` needs nothing else
      labels.json      the label state trained on (a `--budget` draw is saved, not redrawn)
      checkpoint.pt    model, optimizer, scheduler, RNG states, epoch (atomic, every epoch)
      metrics.jsonl    one record per epoch (losses, lr, seconds) and per evaluation
      results.json     final test metrics (f-mAP@0.5, v-mAP@0.1..0.5, @0.5:0.95, accuracy)
      curves.png       training curves (needs matplotlib: pip install "claus[plots]")
      detections.png   test frames, ground truth red, predictions blue
      tensorboard/     when TensorBoard is installed

A config file is a flat mapping of `RunSpec` and `TrainConfig` fields (YAML or JSON).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from claus.data import LabelState, VideoDataset, load_dataset
from claus.io import atomic_write_json, atomic_write_text
from claus.training import (
    CHECKPOINT,
    METRICS,
    TrainConfig,
    _rank,
    evaluate,
    fit,
    load_checkpoint_model,
    read_metrics,
    resolve_device,
)

log = logging.getLogger(__name__)

__all__ = [
    "RunSpec",
    "evaluate_run",
    "load_config_file",
    "make_labels",
    "open_dataset",
    "read_run_config",
    "results_table",
    "split_config",
    "train_run",
    "write_run_config",
]

PROTOCOLS = ("act", "localization")


@dataclass
class RunSpec:
    """What a supervised run trains on (the part of its config outside `TrainConfig`).

    Attributes:
        dataset: a `claus.data.DATASETS` name ("synthetic", "synthetic:tiny", "ucf101-24", ...).
        root: dataset folder or JSON file (not for synthetic).
        store: frame store folder (`python -m claus.data.prepare`).
        data_seed: synthetic generator seed.
        labels: "full" (every training frame) or a label-state JSON file; ignored with budget.
        budget: percent of the training boxes, labelled on random videos (seeded by the
            training seed), e.g. 5.
        protocol: "act" or "localization" for the final evaluation.
    """

    dataset: str = "synthetic"
    root: str | None = None
    store: str | None = None
    data_seed: int = 0
    labels: str | None = "full"
    budget: float | None = None
    protocol: str = "act"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.budget is not None and not 0 < self.budget <= 100:
            raise ValueError(f"budget must be a percentage in (0, 100], got {self.budget!r}")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A flat mapping from a YAML (.yaml/.yml) or JSON file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ImportError(f"reading {path} needs PyYAML: pip install pyyaml "
                              "(or write the config as JSON)") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    return data


def split_config(values: dict[str, Any], source: str = "config") -> tuple[RunSpec, TrainConfig]:
    """Separate a flat mapping into `RunSpec` and `TrainConfig` (types converted; unknown
    keys are an error naming `source` and listing the valid fields)."""
    spec_fields = {f.name: f for f in fields(RunSpec)}
    train_names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(spec_fields) - train_names)
    if unknown:
        raise ValueError(f"{source}: unknown field(s) {', '.join(unknown)}; valid: "
                         f"{', '.join([*spec_fields, *sorted(train_names)])}")
    spec_kw = {}
    for k, v in values.items():
        if k in spec_fields:
            spec_kw[k] = _convert_spec(spec_fields[k].type, k, v, source)
    cfg = TrainConfig.from_dict({k: v for k, v in values.items() if k in train_names}, source)
    return RunSpec(**spec_kw), cfg


def _convert_spec(kind: Any, name: str, value: Any, source: str) -> Any:
    kind = str(kind)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
        if "None" in kind:
            return None
        raise ValueError(f"{source}: field {name} cannot be empty")
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: field {name} expects {kind}, got {value!r}") from None


def write_run_config(run_dir: str | Path, spec: RunSpec, cfg: TrainConfig) -> Path:
    """config.yaml (config.json without PyYAML) in the run folder, atomically."""
    run_dir = Path(run_dir)
    values = {**asdict(spec), **cfg.to_dict()}
    try:
        import yaml
    except ImportError:
        path = run_dir / "config.json"
        atomic_write_json(path, values)
        return path
    path = run_dir / "config.yaml"
    atomic_write_text(path, "# claus training run: RunSpec + TrainConfig fields\n"
                      + yaml.safe_dump(values, sort_keys=False))
    return path


def read_run_config(run_dir: str | Path) -> tuple[RunSpec, TrainConfig]:
    """The spec and config of a run folder (config.yaml or config.json)."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "config.json"):
        if (run_dir / name).is_file():
            return split_config(load_config_file(run_dir / name), str(run_dir / name))
    raise FileNotFoundError(f"{run_dir} is not a claus run folder (no config.yaml or "
                            "config.json)")


def open_dataset(spec: RunSpec) -> VideoDataset:
    """The dataset a spec names (`claus.data.load_dataset`)."""
    return load_dataset(spec.dataset, spec.root, seed=spec.data_seed, store=spec.store)


def make_labels(spec: RunSpec, ds: VideoDataset, seed: int = 0) -> LabelState:
    """The label state a spec asks for: a random `budget` percent, "full", or a file."""
    if spec.budget is not None:
        return LabelState.random(ds, spec.budget, seed=seed)
    if spec.labels in (None, "full"):
        return LabelState.full(ds)
    return LabelState.load(spec.labels, ds)


def train_run(spec: RunSpec, cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False,
              progress: bool = True, plots: bool = True) -> dict:
    """Train and evaluate one supervised run in a folder (layout in the module docstring).

    A fresh run writes config and labels first; with `resume` the folder's labels.json is used
    and training continues from its checkpoint. Only rank 0 evaluates and writes under DDP.

    Returns:
        The final evaluation (see `claus.training.evaluate`) plus "run" (the folder) and
        "pictures" (paths written); other ranks return {}.
    """
    run_dir = Path(run_dir)
    rank = _rank()
    if not resume and (run_dir / CHECKPOINT).is_file():
        raise ValueError(f"{run_dir} already holds a training run; resume it (--resume "
                         f"{run_dir}) or choose another run folder")
    ds = open_dataset(spec)
    labels_path = run_dir / "labels.json"
    if resume and labels_path.is_file():
        labels = LabelState.load(labels_path, ds)
    else:
        labels = make_labels(spec, ds, cfg.seed)
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_run_config(run_dir, spec, cfg)
            labels.save(labels_path)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # labels.json exists before any rank reads further
    log.info("training %s on %s: %d labelled frames in %d videos", cfg.model, ds.name,
             labels.num_labelled_frames(), len(labels.labelled_videos()))
    model = fit(cfg, ds, labels, run_dir, resume=resume, progress=progress)
    if rank != 0:
        return {}
    results = evaluate(model, ds, cfg, "test", protocol=spec.protocol, progress=progress)
    results["run"] = str(run_dir)
    results["pictures"] = _pictures(model, ds, cfg, run_dir) if plots else []
    atomic_write_json(run_dir / "results.json", results)
    return results


def _pictures(model, ds: VideoDataset, cfg: TrainConfig, run_dir: Path) -> list[str]:
    from claus.plots import detection_strip, training_curves

    out = []
    curves = training_curves(read_metrics(run_dir / METRICS), run_dir / "curves.png")
    if curves is not None:
        out.append(str(curves))
    out.append(str(detection_strip(model, ds, run_dir / "detections.png", T=cfg.T,
                                   stride=cfg.stride, size=cfg.size,
                                   device=resolve_device(cfg.device),
                                   settings=cfg.detection_settings())))
    return out


def evaluate_run(run_dir: str | Path, split: str = "test", protocol: str | None = None, *,
                 progress: bool = True, write: bool = True,
                 device: str | None = None) -> dict:
    """Re-evaluate a run folder's checkpoint.

    Args:
        run_dir: a folder written by `train_run`.
        split: the split to evaluate.
        protocol: "act" / "localization" (default: the run's).
        write: save to results.json (results-<split>-<protocol>.json when not the run's own
            test/protocol pair).
        device: override of the config's device.

    Returns:
        The evaluation dict plus "run" and, when written, "file".
    """
    run_dir = Path(run_dir)
    spec, _ = read_run_config(run_dir)
    protocol = protocol or spec.protocol
    model, cfg, ckpt = load_checkpoint_model(run_dir / CHECKPOINT)
    if device is not None:
        cfg = cfg.replace(device=device)
    if ckpt["epoch"] < cfg.epochs:
        log.warning("%s holds epoch %d of %d: evaluating an unfinished run", run_dir,
                    ckpt["epoch"], cfg.epochs)
    ds = open_dataset(spec)
    if list(ds.classes) != list(ckpt["classes"]):
        raise ValueError(f"{run_dir}: the checkpoint's classes {ckpt['classes']} differ from "
                         f"the dataset's {ds.classes}")
    results = evaluate(model, ds, cfg, split, protocol=protocol, progress=progress)
    results["run"] = str(run_dir)
    results["epoch"] = int(ckpt["epoch"])
    if write:
        own = split == "test" and protocol == spec.protocol
        path = run_dir / ("results.json" if own else f"results-{split}-{protocol}.json")
        atomic_write_json(path, results)
        results["file"] = str(path)
    return results


def results_table(results: dict) -> str:
    """The headline metrics as a two-row text table."""
    keys = [k for k in ("f-mAP@0.5", "v-mAP@0.1", "v-mAP@0.2", "v-mAP@0.3", "v-mAP@0.5",
                        "v-mAP@0.5:0.95", "accuracy") if k in results]

    def fmt(v: Any) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"

    widths = [max(len(k), 5) for k in keys]
    head = "  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True))
    row = "  ".join(fmt(results[k]).rjust(w) for k, w in zip(keys, widths, strict=True))
    title = (f"{results.get('protocol', 'act')} protocol, {results.get('split', 'test')} split, "
             f"{results.get('videos', '?')} videos (percent)")
    return f"{title}\n{head}\n{row}"
