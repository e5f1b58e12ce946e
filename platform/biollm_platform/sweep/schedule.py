"""The order in which a sweep's trials are handed to Tune: the longest expected trials first.

Tune starts pending trials in the order they are given. With two slots and the grid's order (seed by
seed, sleep then nosleep) the last slot held one long sleep trial while the other core idled; starting
the longest trials first (LPT scheduling) packs the slots. The estimate is a count of optimizer steps
from each trial's resolved config; it only orders trials, nothing else depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from biollm_core.methods.registry import INFO

from .expand import TrialSpec


def expected_steps(config: Mapping[str, Any]) -> float:
    """A trial's cost in training-step equivalents, from its resolved run config (0 when it says too little).

    Training steps: ``train.max_steps``, else ``benchmark.num_tasks * benchmark.switch_every``, times the
    method's relative cost per step (``MethodInfo.step_cost``: replayed batches, a teacher's forward
    pass). A method that sleeps adds one sleep of ``consolidation.max_sleep_steps`` per
    ``consolidation.sleep_min_interval`` steps (the most the scheduler allows).
    """
    train, bench, sleep = config.get("train") or {}, config.get("benchmark") or {}, config.get("consolidation") or {}
    wake = train.get("max_steps") or (bench.get("num_tasks") or 0) * (bench.get("switch_every") or 0)
    info = INFO.get((config.get("method") or {}).get("name", ""))
    if info is None:
        return float(wake)
    cost = wake * info.step_cost
    if info.consolidates_in_sleep and sleep.get("sleep_min_interval"):
        cost += math.ceil(wake / sleep["sleep_min_interval"]) * (sleep.get("max_sleep_steps") or 0)
    return float(cost)


def longest_first(trials: Sequence[TrialSpec]) -> list[TrialSpec]:
    """``trials`` by expected steps, most first; equal estimates keep the grid's order."""
    return sorted(trials, key=lambda t: -expected_steps(t.config))
