"""Sleep pressure and the scheduler's gating (spec §4) against hand values."""

from __future__ import annotations

import math

import pytest

from biollm_core.sleep_pressure import (
    SleepScheduler,
    forgetting_signal,
    should_sleep,
    sleep_length,
    sleep_pressure,
    surprise_novelty,
)


def scheduler(**kwargs: float) -> SleepScheduler:
    settings = {"min_interval": 5, "max_interval": 20, "threshold": 0.5, "min_steps": 10, "max_steps": 50, **kwargs}
    return SleepScheduler(**settings)


def test_pressure_is_the_weighted_sum() -> None:
    # 0.4 * 0.5 + 0.4 * 0.25 + 0.2 * 1.0 = 0.2 + 0.1 + 0.2
    value = sleep_pressure(0.5, 0.25, 1.0, saturation_weight=0.4, forgetting_weight=0.4, novelty_weight=0.2)
    assert value == pytest.approx(0.5)


def test_signals_are_squashed_into_the_unit_interval() -> None:
    assert forgetting_signal(0.0) == 0.0
    assert forgetting_signal(-1.0) == 0.0
    assert forgetting_signal(math.log(2)) == pytest.approx(0.5)  # 1 - exp(-ln 2)
    assert surprise_novelty(1.5, 1.0) == pytest.approx(0.5)
    assert surprise_novelty(0.8, 1.0) == 0.0  # below its running mean: nothing new
    assert surprise_novelty(5.0, 1.0) == 1.0
    assert surprise_novelty(1.0, 0.0) == 0.0


def test_should_sleep_gating() -> None:
    gate = {"min_interval": 5, "max_interval": 20, "threshold": 0.5}
    assert not should_sleep(4, 10.0, **gate)  # before the minimum even at huge pressure
    assert should_sleep(5, 0.5, **gate)  # at the minimum once pressure reaches the threshold
    assert not should_sleep(5, 0.49, **gate)
    assert not should_sleep(19, 0.0, **gate)
    assert should_sleep(20, 0.0, **gate)  # forced at the maximum with no pressure at all


def test_sleep_length_grows_with_pressure() -> None:
    lengths = {"threshold": 0.5, "min_steps": 10, "max_steps": 50}
    assert sleep_length(0.0, **lengths) == 10
    assert sleep_length(0.1, **lengths) == 18  # 10 + 0.2 * 40
    assert sleep_length(0.25, **lengths) == 30  # 10 + 0.5 * 40
    assert sleep_length(0.5, **lengths) == 50
    assert sleep_length(2.0, **lengths) == 50  # capped at the threshold
    assert sleep_length(-0.3, **lengths) == 10


def test_scheduler_decisions_over_time() -> None:
    s = scheduler()
    decisions = []
    for _ in range(25):
        s.tick()
        length = s.decide(0.0)
        decisions.append(length)
        if length:
            s.slept()
    assert decisions.index(10) == 19  # forced after 20 wake steps, at zero pressure the shortest sleep
    assert sum(1 for d in decisions if d) == 1
    assert s.steps_since_sleep == 5


def test_high_pressure_waits_for_the_minimum_then_sleeps_longest() -> None:
    s = scheduler()
    for _ in range(4):
        s.tick()
        assert s.decide(1.0) == 0
    s.tick()
    assert s.decide(0.25) == 0  # under threshold at the minimum: stay awake
    assert s.decide(1.0) == 50


def test_slept_resets_the_counter_so_pressure_must_build_again() -> None:
    s = scheduler()
    for _ in range(7):
        s.tick()
    assert s.decide(0.9) > 0
    s.slept()
    assert s.steps_since_sleep == 0
    s.tick()
    assert s.decide(0.9) == 0  # the same pressure right after a sleep does not trigger another


def test_needs_pressure_only_when_it_can_change_the_decision() -> None:
    fixed = scheduler(min_steps=30, max_steps=30)
    assert not fixed.needs_pressure()  # before the minimum nothing depends on the pressure
    for _ in range(5):
        fixed.tick()
    assert fixed.needs_pressure()
    for _ in range(15):
        fixed.tick()
    assert not fixed.needs_pressure()  # forced, fixed length
    varying = scheduler()
    assert not varying.needs_pressure()  # before the minimum: no sleep at any pressure, whatever its length
    for _ in range(20):
        varying.tick()
    assert varying.needs_pressure()  # forced, but the length depends on the pressure


def test_state_dict_round_trip() -> None:
    s = scheduler()
    for _ in range(3):
        s.tick()
    copy = scheduler()
    copy.load_state_dict(s.state_dict())
    assert copy.steps_since_sleep == 3


def test_the_fixed_policy_sleeps_on_the_timer_whatever_the_pressure() -> None:
    fixed = SleepScheduler(min_interval=5, max_interval=20, threshold=0.5, min_steps=10, max_steps=30, fixed=True)
    for _ in range(19):
        fixed.tick()
        assert fixed.decide(1.0) == 0 and not fixed.needs_pressure()  # high pressure never wakes it early
    fixed.tick()
    assert fixed.decide(0.0) == 30  # on the timer, always the longest sleep
    pressure = SleepScheduler(min_interval=5, max_interval=20, threshold=0.5, min_steps=10, max_steps=30)
    for _ in range(5):
        pressure.tick()
    assert pressure.decide(0.25) == 0 and pressure.decide(0.5) == 30  # at the threshold: sleep, fully
    for _ in range(15):
        pressure.tick()
    assert pressure.decide(0.25) == 20  # forced at the maximum; length by pressure: 10 + 0.5 * 20
