"""The result of a comparison, and the pure step that computes it from paired trials."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biollm_platform.results.collect import SweepData, TrialRecord
from biollm_platform.results.metrics import MetricSpec, favoured_side
from biollm_platform.results.pairing import Assignment, Pair, Pairing, describe
from biollm_platform.results.stats import PairedStats, summarize_paired


@dataclass(frozen=True)
class StatsSettings:
    """How the statistics are computed; written into summary.json so a reader can reproduce them."""

    level: float = 0.95
    n_bootstrap: int = 10_000
    seed: int = 0  # seeds the bootstrap and, for n > 16 pairs, the Monte Carlo sign flips


@dataclass
class MetricComparison:
    """One metric within one condition: the pairs that have the metric, and their statistics."""

    metric: MetricSpec
    condition: Assignment
    pairs: list[Pair]  # pairs where both trials report a finite value, in the order of the arrays
    treatment_values: np.ndarray  # (n,)
    control_values: np.ndarray  # (n,)
    stats: PairedStats
    excluded: list[str] = field(default_factory=list)  # pairs left out of this metric, and why

    @property
    def deltas(self) -> np.ndarray:
        return self.treatment_values - self.control_values  # (n,)

    @property
    def favours(self) -> str | None:
        return favoured_side(self.stats.mean, self.metric.better)

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
    treatment: str
    control: str
    pair_by: tuple[str, ...]
    pairing: Pairing
    comparisons: list[MetricComparison]
    settings: StatsSettings
    notes: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[TrialRecord]:
        return [trial for trial in self.sweep.trials if not trial.usable]

    @property
    def conditions(self) -> list[Assignment]:
        return self.pairing.conditions()

    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(comparison.metric.name for comparison in self.comparisons))


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


def compare_metrics(
    pairing: Pairing, metrics: Sequence[MetricSpec], settings: StatsSettings
) -> list[MetricComparison]:
    """One ``MetricComparison`` per (metric, condition), metrics in the given order."""
    comparisons = []
    for metric in metrics:
        for condition in pairing.conditions():
            kept, treatment_values, control_values, excluded = [], [], [], []
            for pair in (p for p in pairing.pairs if p.condition == condition):
                treatment_value, treatment_reason = summary_value(pair.treatment, metric.name)
                control_value, control_reason = summary_value(pair.control, metric.name)
                if treatment_value is None or control_value is None:
                    reasons = "; ".join(r for r in (treatment_reason, control_reason) if r)
                    excluded.append(f"{describe(pair.key)}: {reasons}")
                    continue
                kept.append(pair)
                treatment_values.append(treatment_value)
                control_values.append(control_value)
            treatment_array = np.array(treatment_values, dtype=np.float64)
            control_array = np.array(control_values, dtype=np.float64)
            stats = summarize_paired(
                treatment_array, control_array, settings.level, settings.n_bootstrap, settings.seed
            )
            comparisons.append(
                MetricComparison(metric, condition, kept, treatment_array, control_array, stats, excluded)
            )
    return comparisons
