"""Trials go to Tune longest expected first (LPT), estimated from their resolved configs."""

from __future__ import annotations

from pathlib import Path

from biollm_platform.sweep.expand import expand
from biollm_platform.sweep.schedule import expected_steps, longest_first
from biollm_platform.sweep.schema import load_sweep


def test_expected_steps_from_the_config() -> None:
    base = {"benchmark": {"num_tasks": 4, "switch_every": 200}, "train": {"max_steps": None},
            "consolidation": {"sleep_min_interval": 100, "max_sleep_steps": 30}}
    assert expected_steps({**base, "method": {"name": "nosleep"}}) == 800
    assert expected_steps({**base, "method": {"name": "cls"}}) == 800 + 8 * 30
    assert expected_steps({**base, "method": {"name": "cls"}, "train": {"max_steps": 250}}) == 250 + 3 * 30  # 3 sleeps started
    assert expected_steps({**base, "method": {"name": "derpp"}}) == 800 * 2.0  # two replayed batches a step
    assert expected_steps({"method": {"name": "cls"}}) == 0  # says too little: keeps the grid's order


def test_the_toy_ablation_runs_its_sleep_trials_first(repo_root: Path) -> None:
    sweep_file = repo_root / "sweeps" / "toy_ablation.yaml"
    trials = expand(load_sweep(sweep_file), sweep_file, "s")
    assert [t.trial_id for t in trials][:2] == ["cls-seed7", "nosleep-seed7"]  # the grid's order
    assert [t.trial_id for t in longest_first(trials)] == [
        *(f"cls-seed{s}" for s in (7, 42, 123, 1, 2)), *(f"nosleep-seed{s}" for s in (7, 42, 123, 1, 2)),
    ]
