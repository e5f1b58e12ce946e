"""The result of a sweep's comparisons, and the pure steps that compute it from paired trials.

Every value of the compared axis other than the control (or the one treatment asked for) is compared
with the control, pair by pair. With more than one comparison of a metric (several treatments or
conditions), the p-values of that metric's family are Holm-adjusted. A comparison *favours* a side only
when it has at least ``MIN_PAIRS_FOR_CLAIM`` pairs (the brief: at least 5 seeds for a claim) and its
adjusted paired t-test p is below ``1 - level``; otherwise it is "not significant".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biollm_platform.results.collect import SweepData, TrialRecord
from biollm_platform.results.metrics import MetricSpec, favoured_side
from biollm_platform.results.pairing import Assignment, Pair, Pairing, describe
from biollm_platform.results.stats import PairedStats, holm_adjust, summarize_paired

MIN_PAIRS_FOR_CLAIM = 5


@dataclass(frozen=True)
class StatsSettings:
    """How the statistics are computed; written into summary.json so a reader can reproduce them."""

    level: float = 0.95
    n_bootstrap: int = 10_000
    seed: int = 0  # seeds the bootstrap and, for n > 16 pairs, the Monte Carlo sign flips

    @property
    def alpha(self) -> float:
        return 1.0 - self.level


@dataclass
class MetricComparison:
    """One metric of one treatment within one condition: its pairs and their statistics."""

    metric: MetricSpec
    treatment: Any
    condition: Assignment
    pairs: list[Pair]  # pairs where both trials report a finite value, in the order of the arrays
    treatment_values: np.ndarray  # (n,)
    control_values: np.ndarray  # (n,)
    stats: PairedStats
    excluded: list[str] = field(default_factory=list)  # pairs left out of this metric, and why
    t_p_holm: float | None = None  # paired t-test p, Holm-adjusted within the metric's family
    sign_p_holm: float | None = None  # sign-flip p, Holm-adjusted likewise
    family_size: int = 1
    alpha: float = 0.05
    control: Any = None  # set for the equal-memory comparisons, whose control is another arm

    @property
    def deltas(self) -> np.ndarray:
        return self.treatment_values - self.control_values  # (n,)

    @property
    def significant(self) -> bool:
        return self.stats.n >= MIN_PAIRS_FOR_CLAIM and self.t_p_holm is not None and self.t_p_holm < self.alpha

    @property
    def favours(self) -> str | None:
        """'treatment' or 'control' when significant; 'not significant' otherwise; None without a
        direction or a mean."""
        side = favoured_side(self.stats.mean, self.metric.better)
        if side is None:
            return None
        return side if self.significant and side != "neither" else "not significant"

    @property
    def treatment_mean(self) -> float | None:
        return float(np.mean(self.treatment_values)) if len(self.treatment_values) else None

    @property
    def control_mean(self) -> float | None:
        return float(np.mean(self.control_values)) if len(self.control_values) else None


@dataclass
class ComparisonResult:
    """Everything ``aggregate_sweep`` found and computed; the files it wrote, when it wrote them."""

    sweep: SweepData
    axis: str
    control: Any
    treatments: list[Any]
    pair_by: tuple[str, ...]
    pairings: dict[Any, Pairing]  # treatment -> its pairing with the control
    comparisons: list[MetricComparison]
    settings: StatsSettings
    leaderboard: Any = None  # results.leaderboard.Leaderboard
    equal_memory: list[MetricComparison] = field(default_factory=list)  # arms that keep the same episodes, pairwise
    notes: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[TrialRecord]:
        return [trial for trial in self.sweep.trials if not trial.usable]

    @property
    def conditions(self) -> list[Assignment]:
        found = {pair.condition for pairing in self.pairings.values() for pair in pairing.pairs}
        return sorted(found, key=lambda c: describe(c))

    @property
    def n_pairs(self) -> int:
        return sum(len(pairing.pairs) for pairing in self.pairings.values())

    @property
    def multiple(self) -> bool:
        return any(c.family_size > 1 for c in self.comparisons)

    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(comparison.metric.name for comparison in self.comparisons))

    def of(self, treatment: Any, condition: Assignment) -> list[MetricComparison]:
        return [c for c in self.comparisons if c.treatment == treatment and c.condition == condition]


def summary_value(trial: TrialRecord, name: str) -> tuple[float | None, str | None]:
    """(value, None) for a finite number in the trial's summary, else (None, reason)."""
    value = (trial.summary or {}).get(name)
    if value is None:
        return None, f"{trial.trial_id} has no {name!r}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"{trial.trial_id} has {name}={value!r}, not a number"
    if not math.isfinite(value):
        return None, f"{trial.trial_id} has {name}={value}"
    return float(value), None


def compare_metric(
    metric: MetricSpec, treatment: Any, condition: Assignment, pairs: Sequence[Pair], settings: StatsSettings
) -> MetricComparison:
    kept, treatment_values, control_values, excluded = [], [], [], []
    for pair in pairs:
        treatment_value, treatment_reason = summary_value(pair.treatment, metric.name)
        control_value, control_reason = summary_value(pair.control, metric.name)
        if treatment_value is None or control_value is None:
            excluded.append(f"{describe(pair.key)}: {'; '.join(r for r in (treatment_reason, control_reason) if r)}")
            continue
        kept.append(pair)
        treatment_values.append(treatment_value)
        control_values.append(control_value)
    t_array, c_array = np.array(treatment_values, dtype=np.float64), np.array(control_values, dtype=np.float64)
    stats = summarize_paired(t_array, c_array, settings.level, settings.n_bootstrap, settings.seed)
    return MetricComparison(metric, treatment, condition, kept, t_array, c_array, stats, excluded, alpha=settings.alpha)


def compare_all(
    pairings: dict[Any, Pairing], metrics: Sequence[MetricSpec], settings: StatsSettings
) -> list[MetricComparison]:
    """One comparison per (metric, treatment, condition); each metric's family Holm-adjusted.

    A key of ``pairings`` is the treatment, or a (treatment, control) tuple when each pairing has its own
    control (the equal-memory comparisons)."""
    comparisons: list[MetricComparison] = []
    for metric in metrics:
        family = []
        for key, pairing in pairings.items():
            treatment, control = key if isinstance(key, tuple) else (key, None)
            for condition in pairing.conditions():
                pairs = [p for p in pairing.pairs if p.condition == condition]
                family.append(compare_metric(metric, treatment, condition, pairs, settings))
                family[-1].control = control
        t_adjusted = holm_adjust([c.stats.t_p_value for c in family])
        sign_adjusted = holm_adjust([c.stats.p_value for c in family])
        size = sum(c.stats.t_p_value is not None for c in family)  # Holm's m: the tests that were made
        for comparison, t_p, sign_p in zip(family, t_adjusted, sign_adjusted, strict=True):
            comparison.t_p_holm, comparison.sign_p_holm, comparison.family_size = t_p, sign_p, size
        comparisons.extend(family)
    return comparisons
