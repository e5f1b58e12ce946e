"""End-to-end runs of the loop on the toy stream: determinism, exact resume of every method, the shared
evaluation protocol, cost accounting, ablations, bad output dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from biollm_core import builders
from biollm_core.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from biollm_core.config.loader import load_config
from biollm_core.errors import UserError
from biollm_core.evaluate import evaluate_tasks
from biollm_core.methods import METHOD_NAMES, MethodContext, build_method
from biollm_core.runner import run_experiment

# A small but complete stream: 2 tasks x 40 steps, a sleep every 20 steps, evals every 10.
SMALL = [
    "train=cpu", "benchmark.num_tasks=2", "benchmark.switch_every=40", "benchmark.heldout_size=64",
    "consolidation.sleep_min_interval=20", "consolidation.sleep_max_interval=20",
    "consolidation.min_sleep_steps=5", "consolidation.max_sleep_steps=5", "train.eval_interval=10",
    "replay.capacity=512", "logging.checkpoint_interval=20",
]
# Tinier still, for what every method must do: 2 tasks x 12 steps, checkpoints every 8, a sleep every 6.
TINY = [
    "train=cpu", "benchmark.num_tasks=2", "benchmark.switch_every=12", "benchmark.heldout_size=32", "train.batch_size=8",
    "consolidation.sleep_min_interval=6", "consolidation.sleep_max_interval=6", "consolidation.min_sleep_steps=2",
    "consolidation.max_sleep_steps=2", "train.eval_interval=4", "replay.capacity=64", "replay.batch_size=8",
    "logging.checkpoint_interval=8", "logging.checkpoint_keep_last=5", "method.fisher_samples=8",
]
FIGURES = ("final_seen_acc_avg", "final_forgetting", "final_bwt", "final_fwt", "anytime_acc", "avg_incremental_acc",
           "final_base_seen_acc_avg", "final_old_task_loss", "accuracy_matrix", "base_accuracy_matrix",
           "gradient_steps", "samples_processed")
CLS_FIGURES = ("sleep_count", "refresh_count_total", "base_updates_in_sleep")


def figures(summary: dict) -> dict:
    return {k: summary[k] for k in FIGURES + tuple(k for k in CLS_FIGURES if k in summary)}


def tiny(method: str, *extra: str) -> list[str]:
    # method.fisher_samples belongs to ewc's section only
    return [f"method={method}", *(o for o in TINY if method == "ewc" or not o.startswith("method.")), *extra]


def test_same_seed_gives_identical_summaries(tmp_path: Path) -> None:
    config = load_config(SMALL)
    first = run_experiment(config, tmp_path / "a")
    second = run_experiment(config, tmp_path / "b")
    assert figures(first) == figures(second)
    assert first["sleep_count"] == 4 and first["base_updates_in_sleep"] == 20
    other = run_experiment(load_config([*SMALL, "seed=8"]), tmp_path / "c")
    assert figures(other) != figures(first)


def test_artifacts_and_metric_names(tmp_path: Path) -> None:
    summary = run_experiment(load_config(SMALL), tmp_path)
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
    # old_task_loss counts only the tasks seen before the current one: none during the first task
    assert all(r["old_task_loss"] is None for r in records if r["step"] <= 40)
    assert all(r["old_task_loss"] is not None for r in records if r["step"] >= 50)  # the first eval in task 1
    for key in ("memory_episodes", "memory_bytes", "trainable_params", "gradient_steps", "samples_processed",
                "anytime_acc", "avg_incremental_acc", "final_fwt", "initial_accuracy"):
        assert summary[key] is not None, key
    assert summary["anytime_steps"] == list(range(10, 81, 10))


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_resumes_exactly(tmp_path: Path, method: str) -> None:
    config = load_config(tiny(method))
    whole = run_experiment(config, tmp_path / "whole")

    class Interrupt(Exception):
        pass

    def stop_after_checkpoint(progress) -> None:  # noqa: ANN001
        if progress.step == 19:  # past the step-16 checkpoint, mid-way to the end
            raise Interrupt

    with pytest.raises(Interrupt):
        run_experiment(config, tmp_path / "cut", progress=stop_after_checkpoint)
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = run_experiment(config, tmp_path / "cut", resume=True)
    assert figures(resumed) == figures(whole)
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))  # records past the checkpoint were replaced, not duplicated


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_segment_rows_are_taken_after_the_methods_end_of_step_work(tmp_path: Path, method: str) -> None:
    """The last row equals an evaluation of the final checkpoint, which holds the model after the last
    step's end-of-step work (for cls, the sleep scheduled at that step)."""
    config = load_config(tiny(method))
    summary = run_experiment(config, tmp_path)
    device = torch.device("cpu")
    precision = builders.build_precision(config, device)
    bench = builders.build_benchmark(config)
    heldouts = [bench.heldout(task) for task in range(bench.num_tasks)]
    fresh = build_method(config, MethodContext(bench, device, precision, heldouts[0].input_ids.shape[1], False))
    fresh.load_state_dict(load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"), device)["method"])
    scores = evaluate_tasks(*fresh.answering_models(), heldouts, config.train.eval_batch_size, precision)
    assert summary["accuracy_matrix"][-1] == scores.combined_accuracy
    assert summary["base_accuracy_matrix"][-1] == scores.base_accuracy
    if method == "cls":
        assert summary["sleep_count"] == 4  # steps 6, 12, 18, 24: the rows at 12 and 24 come after a sleep


def test_every_method_is_evaluated_at_the_same_points_and_reports_its_cost(tmp_path: Path) -> None:
    summaries = {m: run_experiment(load_config(tiny(m)), tmp_path / m) for m in METHOD_NAMES}
    assert len({tuple(s["anytime_steps"]) for s in summaries.values()}) == 1
    assert {len(s["accuracy_matrix"]) for s in summaries.values()} == {2}
    capacity = load_config(tiny("cls")).replay.capacity
    for name in ("cls", "er", "derpp"):  # equal episodic memory
        assert summaries[name]["memory_episodes"] == capacity
    for name in ("finetune", "ewc", "lwf", "nosleep"):
        assert summaries[name]["memory_episodes"] == 0
    assert summaries["ewc"]["memory_bytes"] > 0 and summaries["lwf"]["memory_bytes"] > 0  # Fisher + anchor; a model copy
    assert summaries["finetune"]["memory_bytes"] == summaries["nosleep"]["memory_bytes"] == 0
    assert summaries["finetune"]["samples_processed"] == 24 * 8
    assert summaries["er"]["samples_processed"] == 24 * 8 + 23 * 8  # an equal-size replayed batch from step 2 on
    assert summaries["cls"]["gradient_steps"] == 24 + summaries["cls"]["base_updates_in_sleep"]
    assert summaries["nosleep"]["trainable_params"] < summaries["finetune"]["trainable_params"] < summaries["cls"]["trainable_params"]
    for name in ("finetune", "er", "joint"):  # no hippocampus: the combined and base models coincide
        assert summaries[name]["accuracy_matrix"] == summaries[name]["base_accuracy_matrix"]


def test_nosleep_never_sleeps_and_no_hippocampus_trains_nothing_fast(tmp_path: Path) -> None:
    nosleep = run_experiment(load_config([*SMALL, "mode=nosleep"]), tmp_path / "nosleep")
    assert "sleep_count" not in nosleep and nosleep["memory_episodes"] == 0
    assert load_config([*SMALL, "train.ablation_no_sleep=true"]).method.name == "nosleep"
    ablated = run_experiment(load_config([*SMALL, "train.ablation_disable_hippocampus=true"]), tmp_path / "nohip")
    # Nothing fast learns and, without a hippocampus, cls never sleeps: accuracy stays near chance (1/64).
    assert ablated["sleep_count"] == 0
    assert max(max(row) for row in ablated["accuracy_matrix"]) < 0.1


def test_output_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("not a directory")
    with pytest.raises(UserError, match="is a file"):
        run_experiment(load_config(SMALL), target)
    assert target.read_text() == "not a directory"


def test_existing_run_needs_resume(tmp_path: Path) -> None:
    run_experiment(load_config(tiny("cls")), tmp_path)
    with pytest.raises(UserError, match="--resume"):
        run_experiment(load_config(tiny("cls")), tmp_path)


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
