"""Reading a sweep directory: good trials, failed trials, and broken files reported by path."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from biollm_core.errors import UserError
from biollm_platform.results.collect import load_sweep


def test_reads_every_trial(toy_sweep: Path, factory: ModuleType) -> None:
    sweep = load_sweep(toy_sweep)
    assert sweep.sweep_id == "toy-20250101" and sweep.name == "toy_methods"
    assert [t.trial_id for t in sweep.trials] == [
        f"{m}-seed{s}" for s in factory.SEEDS for m in factory.METHODS
    ]
    assert sweep.problems == []
    trial = sweep.trials[0]
    assert trial.usable and trial.method == "cls" and trial.axes == {"method": "cls", "seed": 7}
    assert trial.summary["final_seen_acc_avg"] == factory.KNOWN["final_seen_acc_avg"]["cls"][0]
    assert len(trial.curves["old_task_loss"]) == factory.STEPS_PER_TASK * factory.TASKS
    assert [step for step, _ in trial.curves["seen_acc"]][:2] == [10, 20]  # eval points only
    assert trial.task_starts == [(1, 0), (51, 1), (101, 2), (151, 3)]


def test_corrupted_summary_is_a_problem_with_its_path(toy_sweep: Path) -> None:
    broken = toy_sweep / "nosleep-seed42" / "summary.json"
    broken.write_text('{"final_seen_acc_avg": 0.2,\n  "final_bwt": ')  # cut off mid-write
    sweep = load_sweep(toy_sweep)
    trial = next(t for t in sweep.trials if t.trial_id == "nosleep-seed42")
    assert not trial.usable
    assert str(broken) in trial.failure and "not valid JSON" in trial.failure
    [problem] = sweep.problems
    assert problem.path == broken and problem.trial_id == "nosleep-seed42"
    assert problem.message.startswith(f"{broken}:2:")  # file:line:column of the damage
    assert sum(t.usable for t in sweep.trials) == 14  # of 15


def test_summary_that_is_not_an_object_is_a_problem(toy_sweep: Path) -> None:
    path = toy_sweep / "cls-seed7" / "summary.json"
    path.write_text("[1, 2]")
    sweep = load_sweep(toy_sweep)
    assert not sweep.trials[0].usable
    assert sweep.problems[0].path == path and "expected a JSON object, got list" in sweep.problems[0].message


def test_error_state_and_missing_summary_are_failures(toy_sweep: Path, factory: ModuleType) -> None:
    def edit(manifest: dict) -> None:
        manifest["trials"][0].update(state="ERROR", error="Traceback ...\nRuntimeError: CUDA out of memory")
        manifest["trials"][1]["state"] = "RUNNING"

    factory.edit_manifest(toy_sweep, edit)
    (toy_sweep / "nosleep-seed7" / "summary.json").unlink()
    sweep = load_sweep(toy_sweep)
    errored, running = sweep.trials[0], sweep.trials[1]
    assert errored.failure == "state ERROR: RuntimeError: CUDA out of memory"
    assert not running.usable and "state RUNNING" in running.failure and "file not found" in running.failure
    assert sweep.problems == []  # an absent summary is a failure, not a damaged file


def test_damaged_metrics_lines_are_skipped_and_reported(toy_sweep: Path, factory: ModuleType) -> None:
    path = toy_sweep / "cls-seed7" / "metrics.jsonl"
    with path.open("a") as handle:
        handle.write('{"step": 201, "old_task_lo')  # a run killed mid-line
    sweep = load_sweep(toy_sweep)
    assert (
        sweep.trials[0].usable
        and len(sweep.trials[0].curves["old_task_loss"]) == factory.STEPS_PER_TASK * factory.TASKS
    )
    [problem] = sweep.problems
    assert problem.message.startswith(
        f"{path}:{factory.STEPS_PER_TASK * factory.TASKS + 1}: unreadable record skipped"
    )


def test_missing_or_broken_manifest_is_a_user_error(tmp_path: Path, toy_sweep: Path) -> None:
    with pytest.raises(UserError, match="no manifest.json"):
        load_sweep(tmp_path)
    (toy_sweep / "manifest.json").write_text("{")
    with pytest.raises(UserError, match=r"manifest.json:1:2: not valid JSON"):
        load_sweep(toy_sweep)
    (toy_sweep / "manifest.json").write_text(json.dumps({"sweep_id": "x"}))
    with pytest.raises(UserError, match="'trials' list"):
        load_sweep(toy_sweep)
