"""What a training run leaves in its folder and reads back: the checkpoint, the metrics log and
the fingerprint that says whether a checkpoint belongs to this run.

    RUN/checkpoint.pt    {"format": "claus.checkpoint", "version": 1, "config", "fingerprint",
                          "num_classes", "classes", "epoch" (epochs done), "step", "model",
                          "optimizer", "scheduler", "rng" (one state per rank), "centers"}
    RUN/metrics.jsonl    one JSON record per epoch and per evaluation (`read_metrics`)

Both are written atomically (`claus.io`), metrics first: a run killed between the two resumes
from the older checkpoint and drops the newer records (`Trainer.resume`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import torch

from claus.data import LabelState, VideoDataset
from claus.io import atomic_write_text
from claus.models import build_model

from .config import RUNTIME_FIELDS, TrainConfig
from .distributed import all_gather_objects

__all__ = [
    "CHECKPOINT",
    "METRICS",
    "fingerprint",
    "fingerprint_diff",
    "gather_rng",
    "load_checkpoint",
    "load_checkpoint_model",
    "read_metrics",
    "set_rng_state",
    "unreadable_videos",
    "write_metrics",
]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


def fingerprint(cfg: TrainConfig, dataset: VideoDataset, labels: LabelState) -> dict:
    """What a checkpoint must agree on to be resumed: the config (minus runtime fields), the
    dataset and a hash of the label state."""
    conf = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS}
    blob = json.dumps(labels.to_json(), sort_keys=True).encode()
    return {"config": conf, "dataset": dataset.name,
            "labels": hashlib.sha256(blob).hexdigest()[:16]}


def fingerprint_diff(a: Mapping, b: Mapping) -> list[str]:
    """The keys two fingerprints differ in ("dataset", "labels", "config.<field>")."""
    diff = [key for key in ("dataset", "labels") if a.get(key) != b.get(key)]
    # A field added since a checkpoint was written counts as its default there.
    default = TrainConfig().to_dict()
    ca, cb = a.get("config", {}), b.get("config", {})
    diff += [f"config.{k}" for k in sorted(set(ca) | set(cb))
             if ca.get(k, default.get(k)) != cb.get(k, default.get(k))]
    return diff


def write_metrics(path: Path, records: list[dict]) -> None:
    """Rewrite a metrics.jsonl file with `records`, atomically (NaN is refused: JSON has none)."""
    atomic_write_text(path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in records))


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl file (empty when absent); the one reader of the
    JSON-lines metrics claus writes (a training run's, and a rounds run's RUN/metrics.jsonl).

    Raises:
        ValueError: the file is not UTF-8 or a line is not JSON (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); the metrics file is "
                         "damaged, restore it or delete it to have it rewritten") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON line ({exc.msg}); the metrics file "
                                 "is damaged, restore it or delete it to have it "
                                 "rewritten") from None
    return out


def unreadable_videos(records: list[dict]) -> dict[str, dict]:
    """{video: {"file", "reason"}} that training left out, from its metrics records."""
    out: dict[str, dict] = {}
    for r in records:
        for name, e in (r.get("unreadable") or {}).items():
            out.setdefault(name, e)
    return out


def load_checkpoint(path: str | Path) -> dict:
    """A claus checkpoint, read with `torch.load(weights_only=True)`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != "claus.checkpoint":
        raise ValueError(f"{path} is not a claus checkpoint (no 'format': 'claus.checkpoint')")
    return ckpt


def load_checkpoint_model(path: str | Path) -> tuple[torch.nn.Module, TrainConfig, dict]:
    """Rebuild the model of a checkpoint: (model on CPU in eval mode, its TrainConfig, the
    checkpoint dict)."""
    ckpt = load_checkpoint(path)
    cfg = TrainConfig.from_dict(ckpt["config"], source=str(path))
    model = build_model(cfg.model, ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg, ckpt


def _rng_state(dropout_gen: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "dropout": dropout_gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def gather_rng(dropout_gen: torch.Generator) -> list[dict]:
    """RNG states of every rank (rank order), so each resumes its own dropout stream; a
    collective under DDP (every rank calls it)."""
    return all_gather_objects(_rng_state(dropout_gen))


def set_rng_state(state: Mapping, dropout_gen: torch.Generator) -> None:
    """Restore one rank's entry of a checkpoint's "rng" list."""
    torch.set_rng_state(state["torch"])
    dropout_gen.set_state(state["dropout"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
