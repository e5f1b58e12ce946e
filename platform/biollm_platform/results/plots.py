"""PNG plots of a comparison: paired slopes per metric, delta bars with intervals, learning curves.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, no global backend
state, no display needed), so plotting is safe inside workers and tests.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from biollm_platform.results.collect import TrialRecord
from biollm_platform.results.comparison import MetricComparison
from biollm_platform.results.pairing import describe

FAVOUR_COLOURS = {"treatment": "#2e7d32", "control": "#c62828", "neither": "#757575", None: "#757575"}
SD_BAND_MIN_N = 3  # below this many trials a standard deviation is too noisy: the band is min-max


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.3g}" if signed else f"{value:.3g}"


def _better_text(comparison: MetricComparison) -> str:
    return f"{comparison.metric.better} is better" if comparison.metric.better else "direction unknown"


def plot_slopes(comparisons: Sequence[MetricComparison], treatment: str, control: str, path: Path) -> Path:
    """One metric: a line per pair from its control value to its treatment value, one panel per condition."""
    metric = comparisons[0].metric
    figure = Figure(figsize=(4.2 * len(comparisons) + 1.8, 4.6), layout="constrained")
    axes_list = figure.subplots(1, len(comparisons), sharey=True, squeeze=False)[0]
    for axes, comparison in zip(axes_list, comparisons, strict=True):
        if len(comparison.pairs):
            # The mean goes underneath, dashed, so a pair lying on it stays visible.
            means = [comparison.control_mean, comparison.treatment_mean]
            axes.plot(
                [0, 1],
                means,
                color="black",
                linewidth=2.5,
                linestyle="--",
                marker="D",
                markersize=9,
                alpha=0.45,
                zorder=1,
                label="mean of pairs",
            )
        else:
            axes.text(0.5, 0.5, "no pairs", ha="center", va="center", transform=axes.transAxes)
        for index, pair in enumerate(comparison.pairs):
            values = [comparison.control_values[index], comparison.treatment_values[index]]
            axes.plot([0, 1], values, marker="o", alpha=0.85, zorder=2, label=describe(pair.key))
        stats = comparison.stats
        axes.set_title(
            f"{describe(comparison.condition)}: mean Δ {_fmt(stats.mean, signed=True)}, "
            f"p = {_fmt(stats.p_value)}, n = {stats.n}",
            fontsize=9,
        )
        axes.set_xticks([0, 1], [control, treatment])
        axes.set_xlim(-0.3, 1.3)
        axes.set_xlabel("mode")
        axes.grid(axis="y", alpha=0.3)
    axes_list[0].set_ylabel(metric.name)
    figure.suptitle(
        f"{metric.name}: {control} → {treatment}, one line per pair ({_better_text(comparisons[0])})"
    )
    if comparisons[-1].pairs:
        axes_list[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title="pair")
    return _save(figure, path)


def plot_deltas(comparisons: Sequence[MetricComparison], treatment: str, control: str, path: Path) -> Path:
    """A panel per metric: mean delta per condition with its t and bootstrap intervals and the pair deltas."""
    by_metric: dict[str, list[MetricComparison]] = defaultdict(list)
    for comparison in comparisons:
        by_metric[comparison.metric.name].append(comparison)
    columns = min(5, len(by_metric))
    rows = math.ceil(len(by_metric) / columns)
    figure = Figure(figsize=(3.6 * columns, 3.4 * rows + 0.9), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    rng = np.random.default_rng(0)  # jitter only: the dots' horizontal spread carries no information
    for axes, (name, group) in zip(grid.flat, by_metric.items(), strict=False):
        for x, comparison in enumerate(group):
            stats = comparison.stats
            if stats.mean is None:
                continue
            axes.bar(x, stats.mean, width=0.55, color=FAVOUR_COLOURS[comparison.favours], alpha=0.55)
            if stats.t_ci is not None:
                low, high = stats.t_ci
                axes.errorbar(
                    x - 0.17,
                    stats.mean,
                    yerr=[[stats.mean - low], [high - stats.mean]],
                    color="black",
                    capsize=5,
                    linewidth=1.5,
                )
            if stats.bootstrap_ci is not None:
                low, high = stats.bootstrap_ci
                axes.errorbar(
                    x + 0.17,
                    stats.mean,
                    yerr=[[max(stats.mean - low, 0.0)], [max(high - stats.mean, 0.0)]],
                    color="#1565c0",
                    capsize=4,
                    linewidth=1.2,
                )
            deltas = comparison.deltas
            axes.scatter(x + rng.uniform(-0.06, 0.06, len(deltas)), deltas, s=16, color="black", zorder=3)
        axes.axhline(0.0, color="grey", linewidth=0.8)
        axes.set_xlim(-0.7, len(group) - 0.3)
        axes.set_xticks(range(len(group)), [describe(c.condition) for c in group], fontsize=8)
        axes.set_title(f"{name}\n({_better_text(group[0])}; n = {group[0].stats.n})", fontsize=9)
        axes.set_ylabel(f"Δ = {treatment} − {control}", fontsize=8)
        axes.tick_params(axis="y", labelsize=8)
        axes.grid(axis="y", alpha=0.3)
    for axes in list(grid.flat)[len(by_metric) :]:
        axes.set_visible(False)
    level = int(round(comparisons[0].stats.level * 100))
    figure.suptitle(
        f"Paired deltas {treatment} − {control}: bar = mean "
        f"(green favours {treatment}, red favours {control}), "
        f"black = {level}% t-CI, blue = {level}% bootstrap CI, dots = pairs",
        fontsize=10,
    )
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


def plot_learning_curve(
    trials: Sequence[TrialRecord],
    metric: str,
    treatment: str,
    control: str,
    condition_axes: Sequence[str],
    path: Path,
) -> Path | None:
    """``metric`` over training steps: mean and band per mode (and condition); None when no trial has it."""
    groups: dict[str, list[TrialRecord]] = defaultdict(list)
    for trial in trials:
        if trial.curves.get(metric) and trial.mode in (treatment, control):
            condition = ", ".join(f"{axis}={trial.axes.get(axis)}" for axis in condition_axes)
            groups[f"{trial.mode} ({condition})" if condition else str(trial.mode)].append(trial)
    if not groups:
        return None
    figure = Figure(figsize=(8.5, 4.8), layout="constrained")
    axes = figure.subplots()
    order = sorted(groups, key=lambda label: (not label.startswith(control), label))
    for label in order:
        members = groups[label]
        steps, means, low, high = _band([trial.curves[metric] for trial in members])
        n = len(members)
        band = "± 1 sd" if n >= SD_BAND_MIN_N else "min–max"
        marker = "o" if len(steps) <= 60 else None  # sparse eval points: show where the measurements are
        line = axes.plot(
            steps,
            means,
            linewidth=1.6,
            marker=marker,
            markersize=3,
            label=f"{label}: mean of {n} run{'s' * (n > 1)}, band {band}",
        )[0]
        axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    reference = next(iter(groups.values()))[0]
    for step, task_id in reference.task_starts[1:]:
        axes.axvline(step, color="grey", linestyle=":", linewidth=1)
        axes.annotate(
            f"task {task_id}",
            (step, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="dimgrey",
        )
    axes.set_xlabel("training step (dotted: a new task starts)")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} over training: mean and band per mode")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    return _save(figure, path)
