"""Pair treatment and control trials: two values of one axis (the method, or any grid axis), the same
``pair_by`` values (the seed) and every other axis held equal.

The axes other than the compared axis and ``pair_by`` define a *condition* (say ``experts.num_experts=64``);
pairs are compared within their condition, never pooled across conditions. Every usable trial that
does not end up in a pair is returned with the reason, so nothing is silently dropped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from biollm_platform.results.collect import TrialRecord

Assignment = tuple[tuple[str, Any], ...]  # sorted (axis, value) items: hashable, printable


@dataclass(frozen=True)
class Pair:
    """A treatment trial and its control, with the axes they share."""

    condition: Assignment  # axes other than the compared one and pair_by
    key: Assignment  # the pair_by axes, e.g. (("seed", 7),)
    treatment: TrialRecord
    control: TrialRecord


@dataclass(frozen=True)
class UnpairedTrial:
    """A usable trial that has no partner, and why."""

    trial: TrialRecord
    reason: str


@dataclass
class Pairing:
    pairs: list[Pair]
    unpaired: list[UnpairedTrial]

    def conditions(self) -> list[Assignment]:
        """The distinct conditions of the pairs, in sorted order."""
        return sorted({pair.condition for pair in self.pairs}, key=_sort_key)


def _sort_key(assignment: Assignment) -> tuple:
    """Numbers in numeric order (seed 7 before 42), everything else by its text."""
    return tuple(
        (
            axis,
            (0, value, "")
            if isinstance(value, int | float) and not isinstance(value, bool)
            else (1, 0, str(value)),
        )
        for axis, value in assignment
    )


def describe(assignment: Assignment) -> str:
    """'seed=7, lr=0.001'; 'all' for the empty assignment (a sweep with no other axes)."""
    return ", ".join(f"{axis}={value}" for axis, value in assignment) or "all"


def _hashable(value: Any) -> Any:
    # Axis values come from JSON: lists and dicts become their canonical JSON text.
    return value if isinstance(value, str | int | float | bool | None) else json.dumps(value, sort_keys=True)


def axis_values(trials: Sequence[TrialRecord], axis: str) -> list[Any]:
    """The distinct values of ``axis`` over the trials, in the order they first appear."""
    return list(dict.fromkeys(_hashable(t.axes[axis]) for t in trials if axis in t.axes))


def pair_trials(
    trials: Sequence[TrialRecord],
    treatment: Any,
    control: Any,
    pair_by: Sequence[str] = ("seed",),
    axis: str = "method",
) -> Pairing:
    """Pair the usable trials whose ``axis`` is ``treatment`` with those whose ``axis`` is ``control``.

    Failed trials are never paired; a usable trial whose partner failed, is missing from the
    sweep, is ambiguous (two candidates) or lacks a ``pair_by`` axis is returned as unpaired.
    """
    unpaired: list[UnpairedTrial] = []
    groups: dict[Assignment, dict[str, list[TrialRecord]]] = defaultdict(lambda: defaultdict(list))
    for trial in trials:
        arm = _hashable(trial.axes.get(axis))
        if arm not in (treatment, control):
            continue  # another arm of the axis: compared in its own pairing
        missing = [name for name in pair_by if name not in trial.axes]
        if missing:
            if trial.usable:
                unpaired.append(
                    UnpairedTrial(trial, f"has no axis {', '.join(map(repr, missing))} to pair by")
                )
            continue
        shared = tuple(
            sorted((name, _hashable(value)) for name, value in trial.axes.items() if name != axis)
        )
        groups[shared][arm].append(trial)

    pairs: list[Pair] = []
    for shared, by_arm in groups.items():
        key = tuple((name, value) for name, value in shared if name in pair_by)
        condition = tuple((name, value) for name, value in shared if name not in pair_by)
        usable = {arm: [t for t in by_arm.get(arm, []) if t.usable] for arm in (treatment, control)}
        if len(usable[treatment]) == 1 and len(usable[control]) == 1:
            pairs.append(Pair(condition, key, usable[treatment][0], usable[control][0]))
            continue
        where = describe(shared)
        for arm, other in ((treatment, control), (control, treatment)):
            for trial in usable[arm]:
                if len(usable[arm]) > 1:
                    ids = ", ".join(t.trial_id for t in usable[arm])
                    reason = (
                        f"{len(usable[arm])} {arm} trials share {where} ({ids}); cannot pair unambiguously"
                    )
                elif len(usable[other]) > 1:
                    ids = ", ".join(t.trial_id for t in usable[other])
                    reason = f"several {other} trials share {where} ({ids}); cannot pair unambiguously"
                elif by_arm.get(other):
                    failed = ", ".join(t.trial_id for t in by_arm[other])
                    reason = f"its {other} partner {failed} failed"
                else:
                    reason = f"no {other} trial with {where} in the sweep"
                unpaired.append(UnpairedTrial(trial, reason))

    pairs.sort(key=lambda pair: (_sort_key(pair.condition), _sort_key(pair.key)))
    return Pairing(pairs, unpaired)
