"""Paired comparison of strategies over seeds, and experiments kept as small committed files.

Within one seed every strategy starts from the same initial labels and is tested on the same
split (and, where the runs train it alike, the same round-0 model), so the honest comparison of
two strategies is the difference *within* each seed, not of their means over seeds:

* `paired_stats`: for strategies A and B at one budget, the per-seed differences B − A of
  f-mAP@0.5 and v-mAP@0.5 (in points of %), over the seeds that ran both (a seed one of them
  lacks does not count), their mean and a 95% confidence interval: paired t (`t_interval`,
  the default) or a seeded percentile bootstrap of the mean (`bootstrap_interval`);
* `compare`: every strategy against random and against each other strategy, at every budget;
  `paired_table` (markdown) and `plot_paired_differences` (one panel per metric) show them.

An experiment folder (`claus.rounds.run_experiment`: OUT/<strategy>/seed<k>/) holds weights and
scores; `export_experiment` keeps what the numbers need as small files to commit::

    experiments/<name>/experiment.json                 the shared run configuration + strategies
    experiments/<name>/metrics/<strategy>/seed<k>.jsonl   each run's metrics.jsonl lines
    experiments/<name>/results.md (+ figures/)         re-tabulated from the two above alone

Exporting another folder of the same configuration into an existing export adds its seeds (an
experiment extended seed by seed over days); a run of another configuration is refused with
the fields that differ. `tabulate` rewrites results.md from the exported files alone.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io import atomic_write_json, atomic_write_text, read_json
from .results import (
    METRICS,
    aggregate,
    can_draw,
    order_strategies,
    plot_map_vs_budget,
    require_matplotlib,
    results_table,
    save_figure,
    upper_bounds,
)
from .run_folder import RunFolder, experiment_runs

__all__ = [
    "CI_METHODS",
    "EXPORT_FORMAT",
    "ExportSummary",
    "Paired",
    "bootstrap_interval",
    "compare",
    "export_experiment",
    "index_lines",
    "paired_stats",
    "paired_table",
    "plot_paired_differences",
    "read_export",
    "report_tables",
    "t_interval",
    "tabulate",
]

log = logging.getLogger(__name__)

#: How the confidence interval of a mean paired difference is computed.
CI_METHODS = ("t", "bootstrap")
#: Resamples and seed of the paired bootstrap (fixed so a table is reproducible).
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
EXPORT_FORMAT = "claus.experiment"
EXPORT_VERSION = 1
#: Run-config fields that say where a run's data lives, not what it is (the run's data
#: fingerprint checks that): runs of other days may differ in them and still pair.
_WHERE = ("root", "store")


# ---------------------------------------------------------------------------- statistics
def t_interval(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Paired-t confidence interval of the mean difference: mean ± t_{(1+level)/2, n−1}·sd/√n.

    Args:
        diffs: per-seed differences (n floats).
        level: coverage (0.95: the 97.5% quantile of Student's t with n − 1 degrees of freedom).
    Returns:
        (low, high), or None for fewer than two differences (no spread to estimate).
    """
    from scipy.stats import t

    d = np.asarray(diffs, dtype=np.float64)
    if d.size < 2:
        return None
    mean = float(d.mean())
    half = float(t.ppf((1 + level) / 2, d.size - 1)) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return mean - half, mean + half


def bootstrap_interval(diffs: Sequence[float], level: float = 0.95, *,
                       resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean paired difference.

    Seeds are resampled with replacement (`resamples` draws of n indices from a PCG64 generator
    seeded by `seed`, so the interval is the same on every machine); the interval is the
    (1 − level)/2 and (1 + level)/2 quantiles (numpy's linear rule) of the resampled means.
    With few seeds it is narrower than paired t: for n = 3 it is the range of the differences
    once a resample of one seed alone (probability 1/27 > 2.5%) is possible.

    Returns:
        (low, high), or None for fewer than two differences.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size < 2:
        return None
    rng = np.random.Generator(np.random.PCG64(seed))
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Paired:
    """B − A for one metric at one budget over the seeds that ran both strategies.

    Attributes:
        a, b: the strategies (B − A; A is the earlier in the report's order, random first).
        percent: the budget (labelled % of the training split's boxes or frames).
        metric: e.g. "f-mAP@0.5" (values in %, so differences are in points).
        seeds: the paired seeds, ascending; diffs: B − A per seed, in that order.
        mean: mean of diffs; ci: (low, high) or None (fewer than two seeds).
        method: "t" or "bootstrap"; level: the interval's coverage; resamples, boot_seed:
            the bootstrap's (0 for t).
    """

    a: str
    b: str
    percent: float
    metric: str
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    mean: float
    ci: tuple[float, float] | None
    method: str = "t"
    level: float = 0.95
    resamples: int = 0
    boot_seed: int = 0

    @property
    def n(self) -> int:
        return len(self.seeds)


def index_lines(lines: Iterable[dict]) -> dict[tuple[str, int, float], dict]:
    """{(strategy, seed, percent): metrics} of metric lines; a second line for the same run and
    budget is a ValueError (two folders of one run mixed)."""
    out: dict[tuple[str, int, float], dict] = {}
    for x in lines:
        key = (str(x["strategy"]), int(x["seed"]), float(x["percent"]))
        if key in out:
            raise ValueError(f"metrics: two lines for {key[0]} seed {key[1]} at {key[2]:g}%; "
                             "give each run's lines once")
        out[key] = x.get("metrics") or {}
    return out


def paired_stats(index: dict[tuple[str, int, float], dict], a: str, b: str, percent: float,
                 metric: str, *, method: str = "t", level: float = 0.95,
                 resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> Paired | None:
    """B − A of `metric` at `percent` over the seeds where both runs report it (None: none).

    Args:
        index: `index_lines` of the runs' metric lines.
        method: "t" (`t_interval`) or "bootstrap" (`bootstrap_interval` with resamples, seed).
    """
    if method not in CI_METHODS:
        raise ValueError(f"--ci: unknown method {method!r}; choices: {', '.join(CI_METHODS)}")
    seeds, diffs = [], []
    for s in sorted({k[1] for k in index if k[0] == a and k[2] == percent}):
        va = index[(a, s, percent)].get(metric)
        vb = index.get((b, s, percent), {}).get(metric)
        if va is not None and vb is not None:  # None: undefined (no test tube), not 0
            seeds.append(s)
            diffs.append(float(vb) - float(va))
    if not seeds:
        return None
    if method == "t":
        ci, resamples, seed = t_interval(diffs, level), 0, 0
    else:
        ci = bootstrap_interval(diffs, level, resamples=resamples, seed=seed)
    return Paired(a, b, percent, metric, tuple(seeds), tuple(diffs), float(np.mean(diffs)), ci,
                  method, level, resamples, seed)


def compare(lines: Iterable[dict], *, method: str = "t", level: float = 0.95,
            metrics: Sequence[str] = METRICS, resamples: int = BOOTSTRAP_RESAMPLES,
            seed: int = BOOTSTRAP_SEED) -> list[Paired]:
    """Every pair of strategies (B − A, A earlier in the report's order: random first, so the
    first rows are each strategy against random), at every budget both ran, every metric.

    `full` (the upper bound) is not paired. Rows run pair by pair, budgets ascending, metrics
    in the order given.
    """
    index = index_lines(lines)
    names = order_strategies({k[0] for k in index})  # without the upper bound
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            budgets = sorted({k[2] for k in index if k[0] == a}
                             & {k[2] for k in index if k[0] == b})
            for p in budgets:
                for m in metrics:
                    st = paired_stats(index, a, b, p, m, method=method, level=level,
                                      resamples=resamples, seed=seed)
                    if st is not None:
                        out.append(st)
    return out


# ---------------------------------------------------------------------------- table, picture
def method_label(st: Paired) -> str:
    """The interval's name in a table header, e.g. "95% CI, paired t"."""
    what = ("paired t" if st.method == "t" else
            f"paired bootstrap, {st.resamples} resamples, seed {st.boot_seed}")
    return f"{st.level * 100:g}% CI, {what}"


def _mean_cell(st: Paired | None, n: int) -> str:
    if st is None:
        return "–"
    text = f"{st.mean:+.1f}"
    text += f" [{st.ci[0]:+.1f}, {st.ci[1]:+.1f}]" if st.ci else " (no CI)"
    return text + (f" (n={st.n})" if st.n != n else "")


def _seeds_cell(st: Paired | None) -> str:
    if st is None:
        return "–"
    return ", ".join(f"{s}: {d:+.1f}" for s, d in zip(st.seeds, st.diffs, strict=True))


def paired_table(stats: Sequence[Paired], metrics: Sequence[str] = METRICS) -> str:
    """Markdown table: one row per strategy pair and budget; per metric the mean difference
    with its interval (the header names the method), the paired seeds' count, and the
    per-seed differences ("seed: B − A"). A metric with fewer seeds than the row (a run
    without it) says its own n. Values in points of %, one decimal."""
    if not stats:
        return "(No budget with a seed that ran two strategies.)\n"
    rows: dict[tuple[str, str, float], dict[str, Paired]] = {}
    for st in stats:
        rows.setdefault((st.a, st.b, st.percent), {})[st.metric] = st
    head = (["pair", "budget", "seeds"]
            + [f"Δ {m} ({method_label(stats[0])})" for m in metrics]
            + [f"Δ {m} per seed" for m in metrics])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (a, b, p), cells in rows.items():
        n = max(st.n for st in cells.values())
        row = ([f"{b} − {a}", f"{p:g}%", str(n)]
               + [_mean_cell(cells.get(m), n) for m in metrics]
               + [_seeds_cell(cells.get(m)) for m in metrics])
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def report_tables(lines: Sequence[dict], *, method: str = "t", level: float = 0.95) -> str:
    """The tables of results.md: mean ± std per strategy and budget (`results_table`), then the
    paired differences (`paired_table`) with how to read them."""
    stats = compare(lines, method=method, level=level)
    how = ("paired t: mean ± t_{0.975, n−1} · sd / √n of the per-seed differences"
           if method == "t" else
           f"percentile bootstrap of the mean over seeds ({BOOTSTRAP_RESAMPLES} resamples, "
           f"PCG64 seed {BOOTSTRAP_SEED})")
    return (results_table(aggregate(lines))
            + "\n## Paired differences\n\n"
            "Per seed, B − A at the same budget (the same seed gives both runs the same initial "
            "labels and test split, and the same round-0 model where they train it alike), in "
            "points of %; only seeds that ran both strategies count (`seeds`). Mean over those "
            f"seeds with its {level * 100:g}% confidence interval by {how}; no interval for "
            "one seed.\n\n"
            + paired_table(stats))


def plot_paired_differences(stats: Sequence[Paired], path: str | os.PathLike,
                            metrics: Sequence[str] = METRICS) -> Path:
    """One panel per metric: per (pair, budget), each seed's difference as a dot (colour by
    seed), the mean as a square with its confidence interval, zero as a dashed line.

    Args:
        stats: `compare`'s rows (at least one).
    """
    if not stats:
        raise ValueError("plot_paired_differences: no paired differences to draw")
    plt = require_matplotlib()
    keys = list(dict.fromkeys((st.a, st.b, st.percent) for st in stats))
    seeds = sorted({s for st in stats for s in st.seeds})
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(seeds)}
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(5.0, 0.45 * len(keys) + 2) *
                                                       len(metrics), 4.2), squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        for x, key in enumerate(keys):
            st = next((q for q in stats if (q.a, q.b, q.percent) == key and q.metric == m),
                      None)
            if st is None:
                continue
            # Seeds spread sideways by their rank so equal differences stay visible.
            for s, d in zip(st.seeds, st.diffs, strict=True):
                off = (seeds.index(s) - (len(seeds) - 1) / 2) * 0.08
                ax.scatter(x + off, d, s=14, color=colours[s], zorder=3)
            lo, hi = st.ci or (st.mean, st.mean)
            ax.errorbar(x + 0.3, st.mean, yerr=[[st.mean - lo], [hi - st.mean]], fmt="s",
                        color="k", ms=4, capsize=3)
        ax.axhline(0.0, ls="--", c="gray", lw=1)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{b} − {a} @{p:g}%" for a, b, p in keys], rotation=60,
                           ha="right", fontsize=7)
        ax.set_ylabel(f"Δ {m} (points)")
        ax.set_title(f"{m}: per-seed B − A, mean with {method_label(stats[0])}", fontsize=8)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[s], label=f"seed {s}")
               for s in seeds]
    handles.append(plt.Line2D([], [], marker="s", ls="", color="k",
                              label=f"mean, {method_label(stats[0])}"))
    axes[0][0].legend(handles=handles, fontsize=7)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- exports
@dataclass
class ExportSummary:
    """What `export_experiment` did: (strategy, seed) runs added, updated (a partial run that
    went on), unchanged; the export folder."""

    folder: Path
    added: list[tuple[str, int]] = field(default_factory=list)
    updated: list[tuple[str, int]] = field(default_factory=list)
    unchanged: list[tuple[str, int]] = field(default_factory=list)

    def __str__(self) -> str:
        def runs(xs):
            return ", ".join(f"{s} seed {k}" for s, k in xs) or "none"

        return (f"{self.folder}: added {runs(self.added)}; updated {runs(self.updated)}; "
                f"unchanged {len(self.unchanged)}")


def _shared_config(doc: dict) -> dict:
    """A `RunConfig.to_json()` without what differs between the runs of one experiment (the
    strategy and seed; the trainer's seed is the run's)."""
    out = {k: v for k, v in doc.items() if k not in ("strategy", "seed")}
    out["train"] = {k: v for k, v in (doc.get("train") or {}).items() if k != "seed"}
    return out


def _config_diff(old: dict, new: dict) -> list[str]:
    """The differing fields of two shared configs, where their data lives aside."""
    from .rounds import config_diff

    def what(d: dict) -> dict:
        return {**d, "data": {k: v for k, v in (d.get("data") or {}).items() if k not in _WHERE}}

    return config_diff(what(old), what(new))


_SEED_DIR = re.compile(r"seed(\d+)")


def _live_runs(live: Path) -> list[tuple[str, int, Path, dict]]:
    """(strategy, seed, run folder, shared config) of an experiment folder's runs, checked
    against their config.json (read as this claus reads it: old versions upgraded); sorted by
    strategy then seed."""
    from .rounds import is_rounds_run, read_run_config

    if not live.is_dir():
        raise FileNotFoundError(f"{live}: no such experiment folder; give the --out folder of "
                                "python -m claus.experiment")
    runs = []
    for strategy, seed, run in experiment_runs(live):
        if not is_rounds_run(run):
            continue
        cfg = read_run_config(run)
        if (cfg.strategy, cfg.seed) != (strategy, seed):
            raise ValueError(f"{RunFolder(run).config}: a run of {cfg.strategy} seed "
                             f"{cfg.seed} in the folder of {strategy} seed {seed}; move it "
                             "to OUT/<strategy>/seed<k>")
        runs.append((cfg.strategy, cfg.seed, run, _shared_config(cfg.to_json())))
    if not runs:
        raise FileNotFoundError(f"{live}: no runs (OUT/<strategy>/seed<k>/config.json); give "
                                "the --out folder of python -m claus.experiment")
    return sorted(runs, key=lambda r: (r[0], r[1]))


def _relative_donor(line: dict, live: Path) -> dict:
    """The line with `round0_from` (the path of the run whose round 0 it adopted) as
    "<strategy>/seed<k>" when that run is in the experiment folder, so an export names no
    machine's paths."""
    donor = line.get("round0_from")
    if not donor:
        return line
    rel = Path(*Path(donor).parts[-2:])
    if len(rel.parts) < 2 or not RunFolder(live / rel).config.is_file():
        return line
    return {**line, "round0_from": rel.as_posix()}


def _jsonl(lines: Sequence[dict]) -> str:
    return "".join(json.dumps(x, allow_nan=False, ensure_ascii=False) + "\n" for x in lines)


def _read_spec(folder: Path) -> dict | None:
    """experiment.json of an export (None when the folder has none), its format checked."""
    path = folder / "experiment.json"
    if not path.is_file():
        return None
    doc = read_json(path, "experiment record")
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: not an exported claus experiment (format "
                         f"{doc.get('format') if isinstance(doc, dict) else None!r}); export "
                         "into an empty or new folder")
    if doc.get("version") != EXPORT_VERSION:
        raise ValueError(f"{path}: export version {doc.get('version')!r}, this claus reads "
                         f"version {EXPORT_VERSION}; use the claus that wrote it")
    from .config import RunConfig

    # The shared config must still make a run config (a hand-edited one is caught here).
    RunConfig.from_json({**doc.get("run", {}), "strategy": "random", "seed": 0}, str(path))
    return doc


def _merge(old: list[dict], new: list[dict], path: Path, run: Path) -> str:
    """Which of a run's exported lines to keep: "unchanged", "updated" (the live run went on
    past the exported rounds) or "added"; lines that disagree are refused."""
    if not old:
        return "added"
    common = min(len(old), len(new))
    if old[:common] != new[:common]:
        r = next(i for i in range(common) if old[i] != new[i])
        raise ValueError(f"{path}: round {old[r].get('round', r)} differs from "
                         f"{RunFolder(run).metrics}; a run is exported once (delete the file "
                         "to replace it, or export into another folder)")
    return "updated" if len(new) > len(old) else "unchanged"


def export_experiment(live: str | os.PathLike, dest: str | os.PathLike, *,
                      pictures: bool = True, method: str = "t") -> ExportSummary:
    """Export an experiment folder's results (not its weights) into `dest`; runs already there
    stay, so exporting the folders of later seeds extends the export.

    Every run must have the configuration of the others and of the export (strategy and seed
    aside, and where the data lives): one that differs is a ValueError naming its config.json
    and the fields. Nothing is written unless every run passes. Then results.md (and
    figures/ when `pictures`) is re-tabulated from the export alone (`tabulate`).

    Args:
        live: the experiment folder (OUT/<strategy>/seed<k>/ with config.json, metrics.jsonl).
        dest: the export folder, e.g. experiments/<name>.
    """
    from .rounds import load_metrics

    live, dest = Path(live), Path(dest)
    runs = _live_runs(live)
    spec = _read_spec(dest)
    ref_doc, ref_name = ((spec["run"], dest / "experiment.json") if spec else
                         (runs[0][3], RunFolder(runs[0][2]).config))
    for _, _, run, doc in runs:
        diff = _config_diff(ref_doc, doc)
        if diff:
            raise ValueError(f"{RunFolder(run).config}: differs from {ref_name} in "
                             f"{', '.join(diff)}; export runs of one configuration per folder "
                             "(another configuration goes to another export)")
    summary = ExportSummary(dest)
    writes: list[tuple[Path, list[dict]]] = []
    for s, k, run, _ in runs:
        lines = [_relative_donor(x, live) for x in load_metrics(run)]
        if not lines:
            continue  # nothing committed yet: nothing to compare
        path = dest / "metrics" / s / f"seed{k}.jsonl"
        old = _read_lines(path, s, k) if path.is_file() else []
        what = _merge(old, lines, path, run)
        getattr(summary, what).append((s, k))
        if what != "unchanged":
            writes.append((path, lines))
    if not spec and not writes:
        raise ValueError(f"{live}: no run has committed a round yet; export once round 0 "
                         "has committed")
    names = set(spec["strategies"] if spec else []) | {
        s for s, _ in summary.added + summary.updated + summary.unchanged}
    strategies = order_strategies(names) + upper_bounds(names)
    atomic_write_json(dest / "experiment.json", {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "strategies": strategies,
        "run": spec["run"] if spec else ref_doc})
    for path, lines in writes:
        atomic_write_text(path, _jsonl(lines))
    tabulate(dest, pictures=pictures, method=method)
    return summary


def _read_lines(path: Path, strategy: str, seed: int) -> list[dict]:
    """An exported run's lines, each checked to be that run's (strategy, seed, a budget, a
    metrics mapping)."""
    from .training import read_metrics

    lines = read_metrics(path)
    for n, x in enumerate(lines, 1):
        ok = (isinstance(x, dict) and x.get("strategy") == strategy and x.get("seed") == seed
              and isinstance(x.get("percent"), int | float)
              and isinstance(x.get("metrics", {}), dict))
        if not ok:
            raise ValueError(f"{path}:{n}: not a metrics line of {strategy} seed {seed} "
                             "(strategy, seed, percent, metrics); restore the file from git")
    return lines


def read_export(folder: str | os.PathLike) -> tuple[dict, list[dict]]:
    """(experiment.json, every run's metric lines) of an export; a missing or damaged file is
    a ValueError / FileNotFoundError naming it."""
    folder = Path(folder)
    spec = _read_spec(folder)
    if spec is None:
        raise FileNotFoundError(f"{folder}: no experiment.json; give a folder written by "
                                "python -m claus.experiment --export")
    lines: list[dict] = []
    for path in sorted((folder / "metrics").glob("*/*.jsonl")):
        m = _SEED_DIR.fullmatch(path.stem)
        s = path.parent.name
        if m is None or s not in spec["strategies"]:
            raise ValueError(f"{path}: not a run of this export (metrics/<strategy>/seed<k>"
                             f".jsonl with a strategy of experiment.json: "
                             f"{', '.join(spec['strategies'])}); move or delete it")
        lines += _read_lines(path, s, int(m.group(1)))
    return spec, lines


def tabulate(folder: str | os.PathLike, *, pictures: bool = True,
             method: str = "t") -> tuple[Path, list[Path]]:
    """FOLDER/results.md (and figures/ when `pictures` and matplotlib is installed) from an
    export's files alone (`read_export`). Returns (results.md, pictures)."""
    folder = Path(folder)
    spec, lines = read_export(folder)
    seeds = sorted({x["seed"] for x in lines})
    unit = next((x["budget_unit"] for x in lines if x.get("budget_unit")), "boxes")
    text = [f"# claus experiment {folder.name}\n",
            "Re-tabulated from this folder's `experiment.json` and `metrics/` alone "
            "(`python -m claus.experiment --tabulate DIR`; `--export DIR --out RUNS` adds the "
            "runs of another experiment folder of the same configuration). f-mAP@0.5 and "
            f"v-mAP@0.5 in %, mean ± std over seeds {seeds} (sample std; one seed: no ±). "
            f"Columns: % of the training split's {unit} labelled.\n",
            report_tables(lines, method=method)]
    figs: list[Path] = []
    pictures = pictures and can_draw(text)
    if pictures:
        figs.append(plot_map_vs_budget(aggregate(lines), folder / "figures" /
                                       "map_vs_budget.png"))
        stats = compare(lines, method=method)
        if stats:
            figs.append(plot_paired_differences(stats, folder / "figures" /
                                                "paired_differences.png"))
        text.append("\nPictures:\n\n" + "".join(f"- `{p.relative_to(folder)}`\n" for p in figs))
    path = folder / "results.md"
    atomic_write_text(path, "\n".join(text))
    return path, figs
