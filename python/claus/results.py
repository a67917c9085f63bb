"""The numbers of many runs: metric lines (`metrics.jsonl` of each run) → per-strategy means
over seeds (`aggregate`), the report's strategy order (`order_strategies`, `upper_bounds`), the
markdown results table (`results_table`) and the mAP-vs-budget picture
(`plot_map_vs_budget`, with the matplotlib helpers every picture of many runs uses).

Shared by `claus.reports` (an experiment's report and its other pictures) and `claus.compare`
(paired differences, exported experiments); it imports neither. Torch-free.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .io import atomic_write
from .selection import STRATEGIES, is_upper_bound

__all__ = [
    "METRICS",
    "aggregate",
    "order_strategies",
    "plot_map_vs_budget",
    "require_matplotlib",
    "results_table",
    "save_figure",
    "upper_bounds",
]

METRICS = ("f-mAP@0.5", "v-mAP@0.5")


def require_matplotlib():
    """pyplot with the Agg backend, or an ImportError that says how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("pictures need matplotlib: pip install 'claus[plots]' "
                          "(or pip install matplotlib)") from exc
    return plt


def can_draw(text: list[str]) -> bool:
    """Whether pictures can be drawn; when matplotlib is missing, log it and append a note to
    the report's `text` (lines of markdown) so the table is written alone."""
    try:
        require_matplotlib()
    except ImportError as exc:
        logging.getLogger("claus.reports").warning("%s; writing the table only", exc)
        text.append(f"\n(No pictures: {exc}.)\n")
        return False
    return True


def aggregate(lines: Sequence[dict]) -> dict:
    """{strategy: {percent: {metric: (mean, std, n)}}} from metrics.jsonl lines of many runs.

    std is the sample standard deviation (ddof = 1; 0 for one seed).
    """
    acc: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for x in lines:
        for m, v in x["metrics"].items():
            if v is None:
                continue
            acc[x["strategy"]][float(x["percent"])][m].append(float(v))
    out: dict = {}
    for s, per in acc.items():
        out[s] = {}
        for p, ms in per.items():
            out[s][p] = {m: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                             len(v)) for m, v in ms.items()}
    return out


def _cell(stat: tuple[float, float, int] | None) -> str:
    if stat is None:
        return "–"
    mean, std, n = stat
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def order_strategies(names) -> list[str]:
    """`names` in the report's order: the registered strategies in their registration order
    (the paper's first: random, equidistant, entropy, uncertainty, claus), then the others by
    name; upper bounds (`full`, `upper_bounds`) are left out."""
    first = [s for s in STRATEGIES if s in names and not is_upper_bound(s)]
    return first + sorted(s for s in names if s not in first and not is_upper_bound(s))


def upper_bounds(names) -> list[str]:
    """The registered strategies without selection rounds among `names` (`full`), shown as
    the upper bound, in registration order."""
    return [s for s in STRATEGIES if s in names and is_upper_bound(s)]


def results_table(agg: dict, metrics: Sequence[str] = METRICS) -> str:
    """Markdown table: strategy × budget → each metric (in %, as the trainer reports them;
    mean ± std over seeds)."""
    upper = upper_bounds(agg)
    budgets = sorted({p for s, per in agg.items() if s not in upper for p in per})
    head = ["strategy"] + [f"{m} @{p:g}%" for p in budgets for m in metrics]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in order_strategies(agg):
        cells = [_cell(agg[s].get(p, {}).get(m)) for p in budgets for m in metrics]
        rows.append(f"| {s} | " + " | ".join(cells) + " |")
    for s in upper:
        full = next(iter(agg[s].values()))
        cells = [_cell(full.get(m)) for _ in budgets for m in metrics]
        rows.append(f"| {s} (100%) | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure to `path` (atomically; the format from the suffix) and close it."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_map_vs_budget(agg: dict, path: str | os.PathLike,
                       metrics: Sequence[str] = METRICS) -> Path:
    """One panel per metric: mean (± std band) against the labelled % per strategy; the full
    upper bound as a dashed line."""
    plt = require_matplotlib()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    upper = upper_bounds(agg)
    for ax, m in zip(axes[0], metrics, strict=False):
        for s, per in agg.items():
            if s in upper:
                v = next(iter(per.values())).get(m)
                if v:
                    ax.axhline(v[0], ls="--", c="k", lw=1, label=s)
                continue
            ps = sorted(p for p in per if m in per[p])
            mean = np.array([per[p][m][0] for p in ps])
            std = np.array([per[p][m][1] for p in ps])
            ax.plot(ps, mean, marker="o", label=s)
            ax.fill_between(ps, mean - std, mean + std, alpha=0.15)
        ax.set_xlabel("labelled boxes (%)")
        ax.set_ylabel(f"{m} (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return save_figure(fig, path)
