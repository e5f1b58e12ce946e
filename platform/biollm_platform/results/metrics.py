"""The registry of metrics a comparison can report: name (a ``summary.json`` key), meaning, better direction.

The sleep/nosleep ablation is judged on the combined model (neocortex + hippocampus), which answers in
both modes; the ``*base*`` metrics show what sleep consolidated into the neocortex itself (spec §8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricSpec:
    """One compared metric. ``better`` is None for a summary key the registry does not know."""

    name: str
    meaning: str
    better: Direction | None


_REGISTERED = (
    MetricSpec(
        "final_seen_acc_avg",
        "Combined model: mean token accuracy over every task seen, at the end of the run.",
        "higher",
    ),
    MetricSpec(
        "final_forgetting",
        "Combined model: mean over earlier tasks of (best accuracy before the last segment - final).",
        "lower",
    ),
    MetricSpec(
        "final_bwt",
        "Combined model: backward transfer, mean over earlier tasks of (final - just-learned accuracy); "
        "negative means forgetting.",
        "higher",
    ),
    MetricSpec(
        "final_forgetting_index",
        "Combined model: the seed's loss-based forgetting index at the end (held-out loss of seen tasks "
        "above its best so far, floored at 0).",
        "lower",
    ),
    MetricSpec(
        "seen_acc_auc",
        "Combined model: seen-task accuracy averaged over every row of the accuracy matrix (each task "
        "segment's end), i.e. accuracy over the whole stream, not only at its end.",
        "higher",
    ),
    MetricSpec(
        "final_base_seen_acc_avg",
        "Neocortex alone: mean token accuracy over every task seen, at the end (what was consolidated).",
        "higher",
    ),
    MetricSpec(
        "final_base_forgetting",
        "Neocortex alone: mean over earlier tasks of (best accuracy before the last segment - final).",
        "lower",
    ),
    MetricSpec(
        "final_base_bwt",
        "Neocortex alone: backward transfer, mean over earlier tasks of (final - just-learned accuracy).",
        "higher",
    ),
    MetricSpec(
        "base_seen_acc_auc",
        "Neocortex alone: seen-task accuracy averaged over every row of the accuracy matrix.",
        "higher",
    ),
    MetricSpec(
        "final_base_forgetting_index",
        "Neocortex alone: the seed's loss-based forgetting index at the end.",
        "lower",
    ),
    MetricSpec(
        "final_old_task_loss",
        "Combined model: mean held-out loss on the tasks seen before the current one, at the end.",
        "lower",
    ),
    MetricSpec("tokens_per_s", "Training throughput, tokens per second over the run.", "higher"),
    MetricSpec("wall_time_s", "Wall-clock seconds of the run.", "lower"),
)

REGISTRY: dict[str, MetricSpec] = {spec.name: spec for spec in _REGISTERED}

DEFAULT_METRICS: tuple[str, ...] = (
    "final_seen_acc_avg",
    "final_forgetting",
    "final_bwt",
    "final_forgetting_index",
    "seen_acc_auc",
    "final_base_seen_acc_avg",
    "final_base_forgetting",
    "final_base_bwt",
    "final_base_forgetting_index",
    "base_seen_acc_auc",
)


def metric_spec(name: str) -> MetricSpec:
    """The registered spec, or an unranked one for another numeric ``summary.json`` key."""
    return REGISTRY.get(name) or MetricSpec(name, "summary.json key (not in the metric registry).", None)


def favoured_side(mean_delta: float | None, better: Direction | None) -> str | None:
    """Which side the mean delta (treatment - control) favours: 'treatment', 'control' or 'neither'.

    None when there is no mean or no known better direction.
    """
    if mean_delta is None or better is None:
        return None
    if mean_delta == 0.0:
        return "neither"
    treatment_higher = mean_delta > 0.0
    return "treatment" if treatment_higher == (better == "higher") else "control"
