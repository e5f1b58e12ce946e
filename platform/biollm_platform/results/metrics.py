"""The registry of metrics a comparison can report: name (a ``summary.json`` key), meaning, better direction.

Every method is judged on the model that answers (for cls and nosleep the neocortex plus the hippocampus;
for the other methods the neocortex itself); the ``*base*`` metrics show what the neocortex alone holds,
i.e. what sleep consolidated (spec §8). Cost metrics have no better direction: they are reported, not ranked.
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
    MetricSpec("final_seen_acc_avg", "Answering model: mean token accuracy over every task seen, at the end of the run.", "higher"),
    MetricSpec(
        "anytime_acc",
        "Answering model: seen-task accuracy averaged over the anytime evaluations (every train.eval_interval "
        "steps), i.e. what a user gets at any moment, between consolidations included.",
        "higher",
    ),
    MetricSpec(
        "avg_incremental_acc",
        "Answering model: seen-task accuracy averaged over the accuracy matrix's rows (each task segment's end).",
        "higher",
    ),
    MetricSpec(
        "final_forgetting",
        "Answering model: mean over earlier tasks of (best accuracy before the last segment - final).",
        "lower",
    ),
    MetricSpec(
        "final_bwt",
        "Answering model: backward transfer, mean over earlier tasks of (final - just-learned accuracy); "
        "negative means forgetting.",
        "higher",
    ),
    MetricSpec(
        "final_fwt",
        "Answering model: forward transfer, mean over tasks of (accuracy just before the task is trained - "
        "accuracy before any training).",
        "higher",
    ),
    MetricSpec(
        "final_forgetting_index",
        "Answering model: the seed's loss-based forgetting index at the end (held-out loss of the tasks seen "
        "before the current one above its best so far, floored at 0).",
        "lower",
    ),
    MetricSpec(
        "final_old_task_loss",
        "Answering model: mean held-out loss on the tasks seen before the current one, at the end.",
        "lower",
    ),
    MetricSpec(
        "final_base_seen_acc_avg",
        "Neocortex alone: mean token accuracy over every task seen, at the end (what was consolidated).",
        "higher",
    ),
    MetricSpec("base_anytime_acc", "Neocortex alone: seen-task accuracy averaged over the anytime evaluations.", "higher"),
    MetricSpec("base_avg_incremental_acc", "Neocortex alone: seen-task accuracy averaged over the matrix's rows.", "higher"),
    MetricSpec(
        "final_base_forgetting",
        "Neocortex alone: mean over earlier tasks of (best accuracy before the last segment - final).",
        "lower",
    ),
    MetricSpec("final_base_bwt", "Neocortex alone: backward transfer.", "higher"),
    MetricSpec("final_base_fwt", "Neocortex alone: forward transfer.", "higher"),
    MetricSpec("final_base_forgetting_index", "Neocortex alone: the seed's loss-based forgetting index at the end.", "lower"),
    MetricSpec("memory_episodes", "Episodes the method keeps (replay buffer; the whole stream for joint).", None),
    MetricSpec("memory_bytes", "Bytes the method keeps beside the model (buffer, Fisher and anchor, model copy).", None),
    MetricSpec("trainable_params", "Parameters the method updates.", None),
    MetricSpec("gradient_steps", "Optimizer steps over the run (wake and sleep).", None),
    MetricSpec("samples_processed", "Examples through a training forward pass over the run (current, replayed, pseudo).", None),
    MetricSpec("tokens_per_s", "Training throughput, tokens per second over the run.", "higher"),
    MetricSpec("wall_time_s", "Wall-clock seconds of the run.", "lower"),
)

REGISTRY: dict[str, MetricSpec] = {spec.name: spec for spec in _REGISTERED}

DEFAULT_METRICS: tuple[str, ...] = (
    "final_seen_acc_avg",
    "anytime_acc",
    "avg_incremental_acc",
    "final_forgetting",
    "final_bwt",
    "final_fwt",
    "final_forgetting_index",
    "final_base_seen_acc_avg",
    "base_anytime_acc",
    "final_base_forgetting",
)
"""Metrics compared (paired deltas, p-values) by default."""

LEADERBOARD_METRICS: tuple[str, ...] = (
    "final_seen_acc_avg",
    "anytime_acc",
    "avg_incremental_acc",
    "final_forgetting",
    "final_bwt",
    "final_base_seen_acc_avg",
    "memory_episodes",
    "gradient_steps",
    "samples_processed",
    "wall_time_s",
)
"""Columns of the leaderboard (method x metric): the figures above, then the cost accounting."""


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
