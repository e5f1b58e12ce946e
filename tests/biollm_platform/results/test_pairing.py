"""Pairing trials by seed with every other axis held equal; everything unpaired is explained."""

from __future__ import annotations

from pathlib import Path

from biollm_platform.results.collect import TrialRecord
from biollm_platform.results.pairing import describe, pair_trials


def trial(method: str, seed: int, usable: bool = True, **axes: object) -> TrialRecord:
    record = TrialRecord(
        trial_id=f"{method}-seed{seed}" + "".join(f"-{k}={v}" for k, v in axes.items()),
        axes={"method": method, "seed": seed, **axes},
        state="TERMINATED" if usable else "ERROR",
        out_dir=Path("unused"),
        summary={"final_seen_acc_avg": 0.5} if usable else None,
    )
    if not usable:
        record.failure = "state ERROR: boom"
    return record


def test_pairs_by_seed_in_numeric_order() -> None:
    trials = [trial(m, s) for s in (123, 7, 42) for m in ("nosleep", "cls")]
    pairing = pair_trials(trials, "cls", "nosleep")
    assert [describe(p.key) for p in pairing.pairs] == ["seed=7", "seed=42", "seed=123"]
    assert all(p.treatment.method == "cls" and p.control.method == "nosleep" for p in pairing.pairs)
    assert pairing.unpaired == [] and pairing.conditions() == [()]
    assert describe(()) == "all"


def test_other_axes_are_held_equal_and_form_conditions() -> None:
    trials = [trial(m, s, lr=lr) for s in (7, 42) for m in ("cls", "nosleep") for lr in (0.001, 0.01)]
    pairing = pair_trials(trials, "cls", "nosleep")
    assert len(pairing.pairs) == 4
    for pair in pairing.pairs:
        assert pair.treatment.axes["lr"] == pair.control.axes["lr"]
        assert pair.treatment.axes["seed"] == pair.control.axes["seed"]
    assert pairing.conditions() == [(("lr", 0.001),), (("lr", 0.01),)]


def test_missing_partner_and_failed_partner_are_reported_other_arms_left_to_their_pairing() -> None:
    trials = [
        trial("cls", 7),
        trial("nosleep", 7),
        trial("cls", 42),  # no nosleep-seed42 at all
        trial("cls", 123),
        trial("nosleep", 123, usable=False),
        trial("nosleep", 5),  # no cls partner
        trial("er", 7),  # another arm: compared in its own pairing
    ]
    pairing = pair_trials(trials, "cls", "nosleep")
    assert [describe(p.key) for p in pairing.pairs] == ["seed=7"]
    reasons = {u.trial.trial_id: u.reason for u in pairing.unpaired}
    assert reasons == {
        "cls-seed42": "no nosleep trial with seed=42 in the sweep",
        "cls-seed123": "its nosleep partner nosleep-seed123 failed",
        "nosleep-seed5": "no cls trial with seed=5 in the sweep",
    }
    assert [p.treatment.trial_id for p in pair_trials(trials, "er", "nosleep").pairs] == ["er-seed7"]


def test_duplicates_are_not_paired_silently() -> None:
    first, second = trial("cls", 7), trial("cls", 7)
    second.trial_id = "cls-seed7-retry"
    pairing = pair_trials([first, second, trial("nosleep", 7)], "cls", "nosleep")
    assert pairing.pairs == []
    unpaired = {u.trial.trial_id for u in pairing.unpaired}
    assert unpaired == {"cls-seed7", "cls-seed7-retry", "nosleep-seed7"}
    assert all("cannot pair unambiguously" in u.reason for u in pairing.unpaired)


def test_swapped_roles_and_missing_pair_axis() -> None:
    pairing = pair_trials([trial("cls", 7), trial("nosleep", 7)], treatment="nosleep", control="cls")
    assert pairing.pairs[0].treatment.method == "nosleep"
    no_seed = trial("cls", 9)
    del no_seed.axes["seed"]
    assert pair_trials([no_seed], "cls", "nosleep").unpaired[0].reason == "has no axis 'seed' to pair by"
