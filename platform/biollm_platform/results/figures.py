"""PNG figures of a comparison, the ones a paper would show:

- ``leaderboard.png``: method x metric, mean and 95% CI over seeds, one dot per seed, coloured by the
  paired comparison with the control (significantly better / worse / not significant);
- ``accuracy_matrices.png``: the accuracy matrix of each method (mean over seeds) as a heatmap;
- ``curve_<metric>.png``: a metric over training steps per method (mean and band), task switches and
  sleep events marked;
- ``deltas.png``: the paired deltas of each treatment against the control, with their CIs;
- ``pressure.png``: for the methods that sleep, the sleep pressure over steps, its threshold and the sleeps.

Colours come from the Okabe-Ito palette (safe for colour-blind readers); colour means significance,
never the sign of a delta alone. Figures are built with matplotlib's object API on the Agg canvas (no
pyplot, no global backend state, no display).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from biollm_platform.results.collect import TrialRecord
from biollm_platform.results.comparison import ComparisonResult, MetricComparison
from biollm_platform.results.pairing import _hashable, describe

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
SIGNIFICANCE_COLOURS = {"better": "#0072B2", "worse": "#D55E00", "not significant": "#BBBBBB", "control": "#555555"}
SD_BAND_MIN_N = 3  # below this many trials a standard deviation is too noisy: the band is min-max
LABELS = {  # y-axis labels in words, with units
    "final_seen_acc_avg": "final seen-task accuracy\n(fraction of tokens correct)",
    "anytime_acc": "anytime accuracy: mean seen-task\naccuracy over the run (fraction)",
    "avg_incremental_acc": "average incremental accuracy\n(fraction)",
    "final_forgetting": "forgetting (accuracy points lost,\nfraction; lower is better)",
    "final_bwt": "backward transfer (fraction)",
    "final_fwt": "forward transfer (fraction)",
    "final_base_seen_acc_avg": "neocortex alone: final\nseen-task accuracy (fraction)",
    "base_anytime_acc": "neocortex alone: anytime\naccuracy (fraction)",
    "final_base_forgetting": "neocortex alone: forgetting\n(fraction)",
    "final_forgetting_index": "loss-based forgetting index\n(nats per token)",
    "seen_acc": "seen-task accuracy (fraction of tokens correct)",
    "base_seen_acc": "neocortex alone: seen-task accuracy (fraction)",
    "old_task_loss": "held-out loss on earlier tasks (nats per token)",
    "memory_episodes": "episodes kept",
    "gradient_steps": "optimizer steps",
    "samples_processed": "examples through a training pass",
    "wall_time_s": "wall time (s)",
}
FIGURE_METRICS = ("final_seen_acc_avg", "anytime_acc", "final_forgetting", "final_bwt", "final_base_seen_acc_avg")


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def label(metric: str) -> str:
    return LABELS.get(metric, metric)


def arm_colours(arms: Sequence[Any]) -> dict[Any, str]:
    return {arm: PALETTE[i % len(PALETTE)] for i, arm in enumerate(arms)}


def significance(comparison: MetricComparison | None) -> str:
    if comparison is None:
        return "control"
    if comparison.favours == "treatment":
        return "better"
    if comparison.favours == "control":
        return "worse"
    return "not significant"


def plot_leaderboard(result: ComparisonResult, path: Path) -> Path | None:
    board = result.leaderboard
    metrics = [m for m in board.metrics if m.name in FIGURE_METRICS]
    if not metrics or not board.conditions:
        return None
    condition = board.conditions[0]
    figure = Figure(figsize=(3.3 * len(metrics) + 1.0, 4.2), layout="constrained")
    panels = figure.subplots(1, len(metrics), squeeze=False)[0]
    comparisons = {(c.treatment, c.metric.name): c for c in result.comparisons if c.condition == condition}
    for axes, metric in zip(panels, metrics, strict=True):
        for x, arm in enumerate(board.arms):
            cell = board.cell(condition, arm, metric.name)
            if cell.mean is None:
                continue
            kind = significance(comparisons.get((arm, metric.name))) if arm != result.control else "control"
            axes.bar(x, cell.mean, width=0.62, color=SIGNIFICANCE_COLOURS[kind], alpha=0.85)
            if cell.half_width is not None:
                axes.errorbar(x, cell.mean, yerr=cell.half_width, color="black", capsize=4, linewidth=1.2)
            axes.scatter(np.full(cell.n, x) + np.linspace(-0.15, 0.15, cell.n), cell.values, s=10, color="black", zorder=3)
        axes.set_xticks(range(len(board.arms)), [str(a) for a in board.arms], rotation=45, ha="right", fontsize=8)
        axes.set_ylabel(label(metric.name), fontsize=8)
        axes.set_title(f"{metric.name} ({metric.better} is better)", fontsize=9)
        axes.grid(axis="y", alpha=0.3)
    level = int(round(board.level * 100))
    handles = [panels[0].bar([0], [0], color=c, label=k)[0] for k, c in SIGNIFICANCE_COLOURS.items()]
    figure.legend(handles=handles, labels=[f"vs {result.control}: {k}" if k != "control" else f"{result.control} (control)"
                                           for k in SIGNIFICANCE_COLOURS], loc="outside lower center", ncols=4, fontsize=8)
    where = f" ({describe(condition)})" if condition else ""
    figure.suptitle(f"{result.axis} x metric{where}: mean, {level}% CI over seeds, dots = seeds; colour = paired test "
                    f"against {result.control} (Holm-adjusted when several)", fontsize=10)
    return _save(figure, path)


def _mean_matrix(trials: Sequence[TrialRecord], key: str) -> np.ndarray | None:
    matrices = [np.array(t.summary[key], dtype=float) for t in trials if t.summary and t.summary.get(key)]
    shapes = {m.shape for m in matrices}
    return np.mean(matrices, axis=0) if matrices and len(shapes) == 1 else None


def plot_accuracy_matrices(result: ComparisonResult, path: Path) -> Path | None:
    arms = [result.control, *result.treatments]
    groups = {arm: [t for t in result.sweep.trials if t.usable and _hashable(t.axes.get(result.axis)) == arm] for arm in arms}
    matrices = {arm: m for arm, group in groups.items() if (m := _mean_matrix(group, "accuracy_matrix")) is not None}
    if not matrices:
        return None
    columns = min(4, len(matrices))
    rows = math.ceil(len(matrices) / columns)
    figure = Figure(figsize=(3.4 * columns + 0.8, 3.1 * rows + 0.6), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    image = None
    for axes, (arm, matrix) in zip(grid.flat, matrices.items(), strict=False):
        image = axes.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(matrix):
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black")
        axes.set_title(f"{arm} (mean of {len(groups[arm])})", fontsize=9)
        axes.set_xlabel("evaluated on task", fontsize=8)
        axes.set_ylabel("after training segment", fontsize=8)
        axes.set_xticks(range(matrix.shape[1]))
        axes.set_yticks(range(matrix.shape[0]))
    for axes in list(grid.flat)[len(matrices):]:
        axes.set_visible(False)
    if image is not None:
        figure.colorbar(image, ax=grid, shrink=0.8, label="token accuracy (fraction)")
    figure.suptitle("Accuracy matrices of the answering model: row i = after segment i, column j = task j", fontsize=10)
    return _save(figure, path)


def _band(series: Sequence[list[tuple[int, float]]]) -> tuple[np.ndarray, ...]:
    """steps (S,), mean (S,), low (S,), high (S,) over the trials that have each step; band kind by n."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for points in series:
        for step, value in points:
            by_step[step].append(value)
    steps = np.array(sorted(by_step))
    values = [np.array(by_step[step]) for step in steps]
    means = np.array([v.mean() for v in values])
    if len(series) >= SD_BAND_MIN_N:
        spread = np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in values])
        return steps, means, means - spread, means + spread
    return steps, means, np.array([v.min() for v in values]), np.array([v.max() for v in values])


def plot_curve(result: ComparisonResult, metric: str, path: Path) -> Path | None:
    """``metric`` over training steps, one line (mean) and band per arm; None when no trial has it."""
    arms = [result.control, *result.treatments]
    colours = arm_colours(arms)
    groups = {arm: [t for t in result.sweep.trials if t.usable and t.curves.get(metric) and _hashable(t.axes.get(result.axis)) == arm]
              for arm in arms}
    groups = {arm: members for arm, members in groups.items() if members}
    if not groups:
        return None
    figure = Figure(figsize=(9.0, 5.0), layout="constrained")
    axes = figure.subplots()
    for arm, members in groups.items():
        steps, means, low, high = _band([trial.curves[metric] for trial in members])
        n = len(members)
        band = "± 1 sd" if n >= SD_BAND_MIN_N else "min–max"
        axes.plot(steps, means, linewidth=1.6, color=colours[arm], label=f"{arm}: mean of {n}, band {band}")
        axes.fill_between(steps, low, high, color=colours[arm], alpha=0.15, linewidth=0)
        sleeps = sorted({s for t in members for s in t.sleep_steps})
        if sleeps:  # a rug of sleep events along the bottom, in the arm's colour
            axes.plot(sleeps, np.zeros(len(sleeps)), "|", color=colours[arm], markersize=12, transform=axes.get_xaxis_transform(),
                      label=f"{arm}: sleeps")
    reference = next(iter(groups.values()))[0]
    for step, task_id in reference.task_starts[1:]:
        axes.axvline(step, color="grey", linestyle=":", linewidth=1)
        axes.annotate(f"task {task_id}", (step, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                      textcoords="offset points", fontsize=8, color="dimgrey")
    axes.set_xlabel("training step (dotted: a new task starts)")
    axes.set_ylabel(label(metric))
    axes.set_title(f"{metric} over training, per {result.axis}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    return _save(figure, path)


def plot_deltas(result: ComparisonResult, path: Path) -> Path | None:
    """A panel per figure metric: each treatment's mean paired delta with its t-CI and the single pairs."""
    by_metric: dict[str, list[MetricComparison]] = defaultdict(list)
    for comparison in result.comparisons:
        if comparison.metric.name in FIGURE_METRICS and comparison.stats.mean is not None:
            by_metric[comparison.metric.name].append(comparison)
    if not by_metric:
        return None
    figure = Figure(figsize=(3.4 * len(by_metric) + 1.0, 4.2), layout="constrained")
    panels = figure.subplots(1, len(by_metric), squeeze=False)[0]
    for axes, (name, group) in zip(panels, by_metric.items(), strict=True):
        for x, comparison in enumerate(group):
            stats = comparison.stats
            axes.bar(x, stats.mean, width=0.6, color=SIGNIFICANCE_COLOURS[significance(comparison)], alpha=0.85)
            if stats.t_ci is not None:
                low, high = stats.t_ci
                axes.errorbar(x, stats.mean, yerr=[[stats.mean - low], [high - stats.mean]], color="black", capsize=4)
            deltas = comparison.deltas
            axes.scatter(np.full(len(deltas), x) + np.linspace(-0.12, 0.12, len(deltas)), deltas, s=10, color="black", zorder=3)
        axes.axhline(0.0, color="grey", linewidth=0.8)
        names = [f"{c.treatment}" + (f"\n{describe(c.condition)}" if c.condition else "") for c in group]
        axes.set_xticks(range(len(group)), names, rotation=45, ha="right", fontsize=8)
        axes.set_ylabel(f"Δ vs {result.control}: " + label(name).replace("\n", " "), fontsize=8)
        axes.set_title(f"{name} ({group[0].metric.better} is better)", fontsize=9)
        axes.grid(axis="y", alpha=0.3)
    level = int(round(result.settings.level * 100))
    figure.suptitle(f"Paired deltas against {result.control}: bar = mean, black = {level}% t-CI, dots = pairs; blue = "
                    "significantly better, vermillion = worse, grey = not significant", fontsize=10)
    return _save(figure, path)


def plot_pressure(result: ComparisonResult, path: Path) -> Path | None:
    """The scheduler at work: for each arm that sleeps, the sleep pressure over steps (one line per seed),
    its threshold and the sleeps (ticks in the seed's colour); None when no arm sleeps."""
    arms = [result.control, *result.treatments]
    groups = {arm: [t for t in result.sweep.trials if t.usable and t.pressure and t.sleep_steps
                    and _hashable(t.axes.get(result.axis)) == arm] for arm in arms}
    groups = {arm: members for arm, members in groups.items() if members}
    if not groups:
        return None
    figure = Figure(figsize=(9.0, 2.8 * len(groups) + 0.6), layout="constrained")
    panels = figure.subplots(len(groups), 1, squeeze=False, sharex=True)[:, 0]
    for axes, (arm, members) in zip(panels, groups.items(), strict=True):
        for i, trial in enumerate(sorted(members, key=lambda t: str(t.axes.get("seed")))):
            colour = PALETTE[i % len(PALETTE)]
            steps, values = zip(*trial.pressure, strict=True)
            axes.plot(steps, values, linewidth=0.9, color=colour, label=f"seed {trial.axes.get('seed')}")
            axes.plot(trial.sleep_steps, np.full(len(trial.sleep_steps), 1.02 + 0.03 * i), "v", color=colour, markersize=5,
                      transform=axes.get_xaxis_transform(), clip_on=False)
        thresholds = {t.pressure_threshold for t in members if t.pressure_threshold is not None}
        for threshold in thresholds:
            axes.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        for step, _ in members[0].task_starts[1:]:
            axes.axvline(step, color="grey", linestyle=":", linewidth=1)
        axes.set_ylabel("sleep pressure (0-1)")
        axes.set_title(f"{arm}: sleep pressure, threshold (dashed) and sleeps (triangles above)", fontsize=9,
                       pad=8 + 4 * len(members))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="upper right", ncols=2)
    panels[-1].set_xlabel("training step (dotted: a new task starts)")
    return _save(figure, path)


def write_figures(result: ComparisonResult, output_dir: Path, curve_metrics: Sequence[str]) -> list[Path]:
    from biollm_platform.results.aggregate import file_slug

    written = [p for p in (plot_leaderboard(result, output_dir / "leaderboard.png"),
                           plot_accuracy_matrices(result, output_dir / "accuracy_matrices.png"),
                           plot_deltas(result, output_dir / "deltas.png"),
                           plot_pressure(result, output_dir / "pressure.png")) if p is not None]
    for metric in curve_metrics:
        path = plot_curve(result, metric, output_dir / f"curve_{file_slug(metric)}.png")
        if path is None:
            result.notes.append(f"no usable trial's metrics.jsonl has {metric!r}: no learning curve for it")
        else:
            written.append(path)
    return written
