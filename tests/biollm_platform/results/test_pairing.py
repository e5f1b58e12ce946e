"""Pairing trials by seed with every other axis held equal; everything unpaired is explained."""

from __future__ import annotations

from pathlib import Path

from biollm_platform.results.collect import TrialRecord
from biollm_platform.results.pairing import describe, pair_trials


def trial(mode: str, seed: int, usable: bool = True, **axes: object) -> TrialRecord:
    record = TrialRecord(
        trial_id=f"{mode}-seed{seed}" + "".join(f"-{k}={v}" for k, v in axes.items()),
        mode=mode,
        axes={"mode": mode, "seed": seed, **axes},
        state="TERMINATED" if usable else "ERROR",
        out_dir=Path("unused"),
        summary={"final_seen_acc_avg": 0.5} if usable else None,
    )
    if not usable:
        record.failure = "state ERROR: boom"
    return record


def test_pairs_by_seed_in_numeric_order() -> None:
    trials = [trial(m, s) for s in (123, 7, 42) for m in ("nosleep", "sleep")]
    pairing = pair_trials(trials)
    assert [describe(p.key) for p in pairing.pairs] == ["seed=7", "seed=42", "seed=123"]
    assert all(p.treatment.mode == "sleep" and p.control.mode == "nosleep" for p in pairing.pairs)
    assert pairing.unpaired == [] and pairing.conditions() == [()]
    assert describe(()) == "all"


def test_other_axes_are_held_equal_and_form_conditions() -> None:
    trials = [trial(m, s, lr=lr) for s in (7, 42) for m in ("sleep", "nosleep") for lr in (0.001, 0.01)]
    pairing = pair_trials(trials)
    assert len(pairing.pairs) == 4
    for pair in pairing.pairs:
        assert pair.treatment.axes["lr"] == pair.control.axes["lr"]
        assert pair.treatment.axes["seed"] == pair.control.axes["seed"]
    assert pairing.conditions() == [(("lr", 0.001),), (("lr", 0.01),)]


def test_missing_partner_failed_partner_and_other_modes_are_reported() -> None:
    trials = [
        trial("sleep", 7),
        trial("nosleep", 7),
        trial("sleep", 42),  # no nosleep-seed42 at all
        trial("sleep", 123),
        trial("nosleep", 123, usable=False),
        trial("nosleep", 5),  # no sleep partner
        trial("wake_only", 7),
    ]
    pairing = pair_trials(trials)
    assert [describe(p.key) for p in pairing.pairs] == ["seed=7"]
    reasons = {u.trial.trial_id: u.reason for u in pairing.unpaired}
    assert reasons == {
        "sleep-seed42": "no nosleep trial with seed=42 in the sweep",
        "sleep-seed123": "its nosleep partner nosleep-seed123 failed",
        "nosleep-seed5": "no sleep trial with seed=5 in the sweep",
        "wake_only-seed7": "mode='wake_only' is neither 'sleep' nor 'nosleep'",
    }


def test_duplicates_are_not_paired_silently() -> None:
    first, second = trial("sleep", 7), trial("sleep", 7)
    second.trial_id = "sleep-seed7-retry"
    pairing = pair_trials([first, second, trial("nosleep", 7)])
    assert pairing.pairs == []
    unpaired = {u.trial.trial_id for u in pairing.unpaired}
    assert unpaired == {"sleep-seed7", "sleep-seed7-retry", "nosleep-seed7"}
    assert all("cannot pair unambiguously" in u.reason for u in pairing.unpaired)


def test_swapped_roles_and_missing_pair_axis() -> None:
    pairing = pair_trials([trial("sleep", 7), trial("nosleep", 7)], treatment="nosleep", control="sleep")
    assert pairing.pairs[0].treatment.mode == "nosleep"
    no_seed = trial("sleep", 9)
    del no_seed.axes["seed"]
    assert pair_trials([no_seed]).unpaired[0].reason == "has no axis 'seed' to pair by"
