"""A supervised training run as a folder: what `python -m claus.train` / `claus.evaluate` do.

    RUN/
      config.yaml      the run spec (dataset, labels) and every TrainConfig field;
                       `--resume RUN` needs nothing else
      dataset.json     the dataset spec and the sha256 of its annotation files (a resume
                       refuses data that changed, and says how to point at data that moved)
      labels.json      the label state trained on (a `--budget` draw is saved, not redrawn)
      checkpoint.pt    model, optimizer, scheduler, RNG states, epoch (atomic, every epoch)
      metrics.jsonl    one record per epoch (losses, lr, seconds) and per evaluation
      results.json     final test metrics (f-mAP@0.5, v-mAP@0.1..0.5, @0.5:0.95, accuracy);
                       "skipped": {"train"|"eval": {video: {"file", "reason"}}} lists the
                       videos left out because their frames could not be read
      curves.png       training curves (needs matplotlib: pip install "claus[plots]")
      detections.png   test frames, ground truth red, predictions blue
      tensorboard/     when TensorBoard is installed

A config file is a flat mapping of `claus.config` fields (YAML or JSON): the dataset spec, the
labels (`RunSpec`) and `TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import torch

from claus.config import (
    DatasetSpec,
    RunSpec,
    check_data,
    flat_values,
    load_config_file,
    run_spec,
    write_data_fingerprint,
)
from claus.data import LabelState, VideoDataset
from claus.data.faults import BadVideos
from claus.data.frames import FrameReadError
from claus.io import atomic_write_json, atomic_write_text
from claus.training import (
    CHECKPOINT,
    METRICS,
    TrainConfig,
    evaluate,
    fit,
    get_rank,
    load_checkpoint_model,
    read_metrics,
    resolve_device,
    unreadable_videos,
)

log = logging.getLogger(__name__)

__all__ = [
    "RunSpec",
    "evaluate_run",
    "load_config_file",
    "make_labels",
    "open_dataset",
    "evaluation_table",
    "read_run_config",
    "train_run",
    "write_run_config",
]

def write_run_config(run_dir: str | Path, spec: RunSpec, cfg: TrainConfig) -> Path:
    """RUN/config.yaml (flat `claus.config` fields) and RUN/dataset.json (the data's
    fingerprint), atomically."""
    import yaml

    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    atomic_write_text(path, "# claus training run: claus.config fields (RunSpec + TrainConfig)\n"
                      + yaml.safe_dump(flat_values(spec, cfg), sort_keys=False))
    write_data_fingerprint(run_dir, spec.data)
    return path


def read_run_config(run_dir: str | Path) -> tuple[RunSpec, TrainConfig]:
    """The spec and config of a run folder (config.yaml, or config.json of older runs)."""
    run_dir = Path(run_dir)
    from claus.rounds import is_rounds_run

    if is_rounds_run(run_dir):
        raise ValueError(f"{run_dir}: an active-learning run folder, not a supervised one; its "
                         f"rounds' test metrics are in {run_dir / 'metrics.jsonl'} (python -m "
                         f"claus.train --resume {run_dir} prints the table)")
    for name in ("config.yaml", "config.json"):
        path = run_dir / name
        if path.is_file():
            try:
                import yaml

                values = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
                raise ValueError(f"{path}: unreadable ({type(exc).__name__}); restore it or "
                                 "start a new run folder") from None
            if not isinstance(values, dict):
                raise ValueError(f"{path}: not a mapping of fields; restore it or start a new "
                                 "run folder")
            values.pop("beta", None)  # supervised runs never had a cluster loss
            return run_spec(values, str(path))
    raise FileNotFoundError(f"{run_dir}: not a claus run folder (no config.yaml or "
                            "config.json); check the path")


def open_dataset(spec: RunSpec, run_dir: str | Path | None = None) -> VideoDataset:
    """The dataset a spec names; with `run_dir`, first checked against the fingerprint the
    run saved when it started (`claus.config.check_data`)."""
    if run_dir is not None:
        check_data(run_dir, spec.data)
    return spec.data.open()


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
    Videos whose frames cannot be read are left out of training and evaluation, each named in
    a warning and in results.json's "skipped"; the run stops only when more than
    `cfg.max_bad_share` of the dataset's videos are unreadable (`claus.data.faults`).

    Returns:
        The final evaluation (see `claus.training.evaluate`) plus "run" (the folder),
        "pictures" (paths written) and "skipped" when videos were left out; other ranks
        return {}.
    """
    run_dir = Path(run_dir)
    rank = get_rank()
    if not resume and (run_dir / CHECKPOINT).is_file():
        raise ValueError(f"{run_dir} already holds a training run; resume it (--resume "
                         f"{run_dir}) or choose another run folder")
    ds = open_dataset(spec, run_dir if resume else None)
    labels_path = run_dir / "labels.json"
    if resume and labels_path.is_file():
        labels = LabelState.load(labels_path, ds)
        if rank == 0 and spec.data != read_run_config(run_dir)[0].data:
            write_run_config(run_dir, spec, cfg)  # the data moved (--root / --store)
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
    bad = _skipped(ds, cfg, run_dir, results)
    results["pictures"] = _pictures(model, ds, cfg, run_dir, bad) if plots else []
    atomic_write_json(run_dir / "results.json", results)
    bad.check()  # each stage kept to the share; both together may not (results are kept)
    return results


def _skipped(ds: VideoDataset, cfg: TrainConfig, run_dir: Path, results: dict) -> BadVideos:
    """The videos training (its metrics) and evaluation left out, as results["skipped"]
    ({stage: {video: {"file", "reason"}}})."""
    bad = BadVideos.of(ds, cfg.max_bad_share)
    bad.add_json("train", unreadable_videos(read_metrics(run_dir / METRICS)), check=False)
    bad.add_json("eval", results.pop("skipped", {}), check=False)
    if len(bad):
        results["skipped"] = bad.to_json()
    return bad


def _pictures(model, ds: VideoDataset, cfg: TrainConfig, run_dir: Path,
              bad: BadVideos | None = None) -> list[str]:
    from claus.plots import detection_strip, training_curves

    out = []
    curves = training_curves(read_metrics(run_dir / METRICS), run_dir / "curves.png")
    if curves is not None:
        out.append(str(curves))
    # The strip shows readable videos only; a picture is not worth losing the results over.
    shown = ds if not bad else ds.subset([i for i, v in enumerate(ds) if v.name not in bad])
    try:
        out.append(str(detection_strip(model, shown, run_dir / "detections.png",
                                       geometry=cfg.geometry, device=resolve_device(cfg.device),
                                       settings=cfg.detection_settings())))
    except FrameReadError as exc:
        log.warning("%s: no detections picture (%s)", run_dir, exc)
    return out


def evaluate_run(run_dir: str | Path, split: str = "test", protocol: str | None = None, *,
                 progress: bool = True, write: bool = True,
                 device: str | None = None, data: DatasetSpec | None = None) -> dict:
    """Re-evaluate a run folder's checkpoint.

    Args:
        run_dir: a folder written by `train_run`.
        split: the split to evaluate.
        protocol: "act" / "localization" (default: the run's).
        write: save to results.json (results-<split>-<protocol>.json when not the run's own
            test/protocol pair).
        device: override of the config's device.
        data: where the run's data is now, when it moved (same fingerprint).

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
    if data is not None:
        spec = dataclasses.replace(spec, data=data)
    ds = open_dataset(spec, run_dir)
    if list(ds.classes) != list(ckpt["classes"]):
        raise ValueError(f"{run_dir}: the checkpoint's classes {ckpt['classes']} differ from "
                         f"the dataset's {ds.classes}")
    results = evaluate(model, ds, cfg, split, protocol=protocol, progress=progress)
    if "skipped" in results:  # the stage's, as train_run's results.json lists them
        results["skipped"] = {"eval": results["skipped"]}
    results["run"] = str(run_dir)
    results["epoch"] = int(ckpt["epoch"])
    if write:
        own = split == "test" and protocol == spec.protocol
        path = run_dir / ("results.json" if own else f"results-{split}-{protocol}.json")
        atomic_write_json(path, results)
        results["file"] = str(path)
    return results


def evaluation_table(results: dict) -> str:
    """One evaluation's headline metrics as a two-row text table (a title line, the metric
    names, their values). Not `claus.reports.results_table`, which tabulates many runs:
    strategy × budget, mean ± std over seeds."""
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
