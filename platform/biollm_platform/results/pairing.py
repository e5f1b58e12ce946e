"""Pair treatment and control trials: same ``pair_by`` values (the seed) and every other axis held equal.

The axes other than the mode and ``pair_by`` define a *condition* (say ``experts.num_experts=64``);
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

    condition: Assignment  # axes other than mode and pair_by
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


def pair_trials(
    trials: Sequence[TrialRecord],
    treatment: str = "sleep",
    control: str = "nosleep",
    pair_by: Sequence[str] = ("seed",),
    mode_axis: str = "mode",
) -> Pairing:
    """Pair the usable trials of modes ``treatment`` and ``control``.

    Failed trials are never paired; a usable trial whose partner failed, is missing from the
    sweep, is ambiguous (two candidates) or lacks a ``pair_by`` axis is returned as unpaired.
    """
    unpaired: list[UnpairedTrial] = []
    groups: dict[Assignment, dict[str, list[TrialRecord]]] = defaultdict(lambda: defaultdict(list))
    for trial in trials:
        mode = trial.axes.get(mode_axis)
        if mode not in (treatment, control):
            if trial.usable:
                unpaired.append(
                    UnpairedTrial(trial, f"{mode_axis}={mode!r} is neither {treatment!r} nor {control!r}")
                )
            continue
        missing = [axis for axis in pair_by if axis not in trial.axes]
        if missing:
            if trial.usable:
                unpaired.append(
                    UnpairedTrial(trial, f"has no axis {', '.join(map(repr, missing))} to pair by")
                )
            continue
        shared = tuple(
            sorted((axis, _hashable(value)) for axis, value in trial.axes.items() if axis != mode_axis)
        )
        groups[shared][mode].append(trial)

    pairs: list[Pair] = []
    for shared, by_mode in groups.items():
        key = tuple((axis, value) for axis, value in shared if axis in pair_by)
        condition = tuple((axis, value) for axis, value in shared if axis not in pair_by)
        usable = {mode: [t for t in by_mode.get(mode, []) if t.usable] for mode in (treatment, control)}
        if len(usable[treatment]) == 1 and len(usable[control]) == 1:
            pairs.append(Pair(condition, key, usable[treatment][0], usable[control][0]))
            continue
        where = describe(shared)
        for mode, other in ((treatment, control), (control, treatment)):
            for trial in usable[mode]:
                if len(usable[mode]) > 1:
                    ids = ", ".join(t.trial_id for t in usable[mode])
                    reason = (
                        f"{len(usable[mode])} {mode} trials share {where} ({ids}); cannot pair unambiguously"
                    )
                elif len(usable[other]) > 1:
                    ids = ", ".join(t.trial_id for t in usable[other])
                    reason = f"several {other} trials share {where} ({ids}); cannot pair unambiguously"
                elif by_mode.get(other):
                    failed = ", ".join(t.trial_id for t in by_mode[other])
                    reason = f"its {other} partner {failed} failed"
                else:
                    reason = f"no {other} trial with {where} in the sweep"
                unpaired.append(UnpairedTrial(trial, reason))

    pairs.sort(key=lambda pair: (_sort_key(pair.condition), _sort_key(pair.key)))
    return Pairing(pairs, unpaired)
