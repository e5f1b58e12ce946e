"""The leaderboard: every value of the compared axis (every method) x every metric, mean ± CI over seeds.

Unpaired: each cell summarises that arm's usable trials alone (mean, t-based confidence interval of
the mean over its trials, n). The best mean of each column is marked when the metric has a better
direction; cost columns (memory, compute) are reported, not ranked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from biollm_platform.results.collect import TrialRecord
from biollm_platform.results.comparison import summary_value
from biollm_platform.results.metrics import MetricSpec
from biollm_platform.results.pairing import Assignment, _hashable


@dataclass(frozen=True)
class Cell:
    n: int
    mean: float | None
    half_width: float | None  # of the t interval of the mean; None when n < 2
    values: tuple[float, ...]


@dataclass
class Leaderboard:
    axis: str
    arms: list[Any]  # values of the axis, control first
    metrics: list[MetricSpec]
    conditions: list[Assignment]
    cells: dict[tuple[Assignment, Any, str], Cell] = field(default_factory=dict)  # (condition, arm, metric)
    level: float = 0.95

    def cell(self, condition: Assignment, arm: Any, metric: str) -> Cell:
        return self.cells.get((condition, arm, metric), Cell(0, None, None, ()))

    def best(self, condition: Assignment, metric: MetricSpec) -> set[Any]:
        """The arms with the best mean of the column (ties all count); empty for unranked metrics."""
        means = {arm: self.cell(condition, arm, metric.name).mean for arm in self.arms}
        means = {arm: m for arm, m in means.items() if m is not None}
        if metric.better is None or not means:
            return set()
        target = max(means.values()) if metric.better == "higher" else min(means.values())
        return {arm for arm, m in means.items() if math.isclose(m, target, rel_tol=1e-12, abs_tol=1e-12)}


def mean_cell(values: Sequence[float], level: float) -> Cell:
    """Mean and the half width of its t interval, mean ± t_{(1+level)/2, n-1} sd / sqrt(n)."""
    array = np.asarray(values, dtype=np.float64)
    n = len(array)
    if n == 0:
        return Cell(0, None, None, ())
    half = None
    if n >= 2:
        half = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * float(np.std(array, ddof=1)) / math.sqrt(n)
    return Cell(n, float(array.mean()), half, tuple(float(v) for v in array))


def condition_of(trial: TrialRecord, axis: str, pair_by: Sequence[str]) -> Assignment:
    return tuple(sorted((a, _hashable(v)) for a, v in trial.axes.items() if a != axis and a not in pair_by))


def build_leaderboard(
    trials: Sequence[TrialRecord], axis: str, arms: Sequence[Any], pair_by: Sequence[str], metrics: Sequence[MetricSpec], level: float
) -> Leaderboard:
    usable = [t for t in trials if t.usable and axis in t.axes]
    conditions = sorted({condition_of(t, axis, pair_by) for t in usable}, key=str)
    board = Leaderboard(axis, list(arms), list(metrics), conditions, level=level)
    for condition in conditions:
        for arm in arms:
            members = [t for t in usable if _hashable(t.axes[axis]) == arm and condition_of(t, axis, pair_by) == condition]
            for metric in metrics:
                values = [v for v in (summary_value(t, metric.name)[0] for t in members) if v is not None]
                board.cells[(condition, arm, metric.name)] = mean_cell(values, level)
    return board
