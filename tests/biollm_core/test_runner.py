"""End-to-end runs of the engine on the toy stream: determinism, exact resume, ablations, bad output dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_core.checkpoint import list_checkpoints
from biollm_core.config.loader import load_config
from biollm_core.errors import UserError
from biollm_core.runner import run_experiment

# A small but complete stream: 2 tasks x 40 steps, a sleep every 20 steps, evals every 10.
SMALL = [
    "train=cpu", "benchmark.num_tasks=2", "benchmark.switch_every=40", "benchmark.heldout_size=64",
    "consolidation.sleep_min_interval=20", "consolidation.sleep_max_interval=20",
    "consolidation.min_sleep_steps=5", "consolidation.max_sleep_steps=5", "train.eval_interval=10",
    "replay.capacity=512", "logging.checkpoint_interval=20",
]
FIGURES = ("final_seen_acc_avg", "final_forgetting", "final_bwt", "final_base_seen_acc_avg", "final_old_task_loss",
           "accuracy_matrix", "base_accuracy_matrix", "sleep_count", "refresh_count_total", "base_updates_in_sleep")


def figures(summary: dict) -> dict:
    return {k: summary[k] for k in FIGURES}


def test_same_seed_gives_identical_summaries(tmp_path: Path) -> None:
    config = load_config(SMALL)
    first = run_experiment(config, tmp_path / "a")
    second = run_experiment(config, tmp_path / "b")
    assert figures(first) == figures(second)
    assert first["sleep_count"] == 4 and first["base_updates_in_sleep"] == 20
    other = run_experiment(load_config([*SMALL, "seed=8"]), tmp_path / "c")
    assert figures(other) != figures(first)


def test_artifacts_and_metric_names(tmp_path: Path) -> None:
    run_experiment(load_config(SMALL), tmp_path)
    for name in ("validated_config.json", "run_metadata.json", "metrics.jsonl", "summary.json"):
        assert (tmp_path / name).is_file(), name
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 81))
    spec_keys = {"step", "task_id", "task_loss", "old_task_loss", "forgetting_index", "sleep_pressure", "pressure_saturation",
                 "pressure_novelty", "pressure_forgetting", "sleep_count", "sleep_steps", "expert_util_entropy",
                 "refresh_count_total", "base_teacher_kl", "distill_kl", "ewc_penalty", "replay_size", "tokens_per_s"}
    assert spec_keys <= set(records[-1])
    assert "seen_acc" in records[9] and "seen_acc" not in records[8]  # evals every 10 steps only
    assert json.loads((tmp_path / "validated_config.json").read_text())["ewc"]["lambda"] is not None
    assert len(list_checkpoints(tmp_path / "checkpoints")) == 2  # checkpoint_keep_last


def test_resume_continues_the_same_trajectory(tmp_path: Path) -> None:
    config = load_config(SMALL)
    whole = run_experiment(config, tmp_path / "whole")

    class Interrupt(Exception):
        pass

    def stop_after_checkpoint(progress) -> None:  # noqa: ANN001
        if progress.step == 47:  # past the step-40 checkpoint, mid-way to the next
            raise Interrupt

    with pytest.raises(Interrupt):
        run_experiment(config, tmp_path / "cut", progress=stop_after_checkpoint)
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = run_experiment(config, tmp_path / "cut", resume=True)
    assert figures(resumed) == figures(whole)
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 81))  # records past the checkpoint were replaced, not duplicated


def test_nosleep_never_sleeps_and_no_hippocampus_trains_nothing_fast(tmp_path: Path) -> None:
    nosleep = run_experiment(load_config([*SMALL, "mode=nosleep"]), tmp_path / "nosleep")
    assert nosleep["sleep_count"] == 0 and nosleep["base_updates_in_sleep"] == 0
    alias = load_config([*SMALL, "train.ablation_no_sleep=true"])
    assert alias.mode == "nosleep"
    ablated = run_experiment(load_config([*SMALL, "train.ablation_disable_hippocampus=true", "mode=nosleep"]), tmp_path / "nohip")
    # Neither model learns anything: accuracy stays near chance (1/64) on every task.
    assert max(max(row) for row in ablated["accuracy_matrix"]) < 0.1


def test_output_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("not a directory")
    with pytest.raises(UserError, match="is a file"):
        run_experiment(load_config(SMALL), target)
    assert target.read_text() == "not a directory"


def test_existing_run_needs_resume(tmp_path: Path) -> None:
    run_experiment(load_config(SMALL), tmp_path)
    with pytest.raises(UserError, match="--resume"):
        run_experiment(load_config(SMALL), tmp_path)


def test_resume_past_a_truncated_latest_checkpoint_ends_where_an_uninterrupted_run_does(tmp_path: Path) -> None:
    config = load_config(SMALL)
    whole = run_experiment(config, tmp_path / "whole")

    class Interrupt(Exception):
        pass

    def stop(progress) -> None:  # noqa: ANN001
        if progress.step == 47:  # checkpoints at 20 and 40 exist
            raise Interrupt

    with pytest.raises(Interrupt):
        run_experiment(config, tmp_path / "cut", progress=stop)
    latest = tmp_path / "cut" / "checkpoints" / "step-00000040" / "state.pt"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # torn
    resumed = run_experiment(config, tmp_path / "cut", resume=True)  # from step 20
    assert figures(resumed) == figures(whole)
