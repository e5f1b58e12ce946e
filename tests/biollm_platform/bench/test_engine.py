"""The engine benchmark on a tiny config: shape and consistency of the figures, never their speed."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from biollm_core.config.loader import load_config
from biollm_platform.bench.engine import bench_engine
from biollm_platform.cli.app import app

TINY = ["train=cpu", "benchmark.heldout_size=8", "benchmark.num_tasks=2", "replay.capacity=64", "replay.batch_size=8",
        "train.batch_size=4", "train.eval_batch_size=8"]
KEYS = ("plain_step_ms", "wake_step_ms", "sleep_step_ms", "sleep_replay_batch_step_ms", "eval_pass_ms",
        "wake_ratio", "sleep_ratio", "replay_bytes_per_episode", "peak_memory_bytes")
METHODS = ("cls", "nosleep", "finetune", "ewc", "lwf", "er", "derpp", "joint")


def test_bench_engine_figures_are_consistent() -> None:
    result = bench_engine(load_config(TINY), repeats=3, warmup=1, eval_repeats=2)
    for key in KEYS:
        assert result[key] > 0, key
    samples = result["samples_ms"]
    assert all(len(samples[key]) == 3 for key in ("plain", "step", "sleep_plain", "sleep", "sleep_replay_batch"))
    assert len(samples["eval"]) == 2
    assert result["plain_step_ms"] == statistics.median(samples["plain"])
    assert result["wake_ratio"] == pytest.approx(result["wake_step_ms"] / result["plain_step_ms"])
    assert result["sleep_ratio"] == pytest.approx(result["sleep_step_ms"] / result["sleep_plain_step_ms"])
    assert 1 <= result["wake_experts_used"] <= result["num_experts"] == 8
    assert result["plain_tokens_per_s"] == pytest.approx(4 * 16 / result["plain_step_ms"] * 1e3)
    assert result["replay_bytes"] == result["replay_bytes_per_episode"] * 64
    assert result["peak_memory_kind"] == "process_peak_rss"


def test_wake_steps_are_timed_back_to_back_in_a_runs_routing_state() -> None:
    """The timed wake steps follow one another as in a run (sleep steps come after them): train=cpu's
    batch of 32 then routes to all 8 experts. A sleep step after each wake step kept it on 3."""
    result = bench_engine(load_config([*TINY, "train.batch_size=32"]), repeats=6, warmup=3, eval_repeats=1)
    assert result["wake_experts_used"] == 8


def test_bench_engine_refuses_zero_repeats() -> None:
    with pytest.raises(ValueError):
        bench_engine(load_config(TINY), repeats=0)


def test_cli_json_and_table() -> None:
    runner = CliRunner()
    options = ["--json", "--repeats", "2", "--warmup", "0", "--eval-repeats", "1", "--threads", "1"]
    result = runner.invoke(app, ["bench", "engine", *TINY, *options])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert all(data[key] > 0 for key in KEYS) and data["torch_threads"] == 1
    table = runner.invoke(app, ["bench", "engine", *TINY, "--repeats", "1", "--warmup", "0", "--eval-repeats", "1"])
    assert table.exit_code == 0, table.output
    assert "wake/plain" in table.stdout and "replay buffer" in table.stdout and "process peak RSS" in table.stdout
    bad = runner.invoke(app, ["bench", "engine", "experts.num_expertz=3"])
    assert bad.exit_code == 2 and "num_expertz" in bad.output


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_timed_with_the_runners_builder(method: str) -> None:
    result = bench_engine(load_config([*TINY, f"method={method}"]), repeats=1, warmup=0, eval_repeats=1)
    assert result["method"] == method and result["step_ms"] > 0 and result["plain_step_ms"] > 0
    assert result["step_ratio"] == pytest.approx(result["step_ms"] / result["plain_step_ms"])
    assert ("sleep_ratio" in result) == (method == "cls")  # only the CLS learner has a sleep phase
    if method in ("cls", "er", "derpp"):  # equal episodic memory: replay.capacity
        assert result["memory_episodes"] == 64 and result["replay_capacity"] == 64


@pytest.mark.parametrize("method", ["cls", "derpp"])
def test_the_mlp_on_feature_inputs_is_timed_too(method: str, tmp_path) -> None:  # noqa: ANN001
    import numpy as np

    y = np.repeat(np.arange(4), 10)
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(40, 6)), y=y)
    config = load_config(["model=mlp", "benchmark=split_classification", "benchmark.source=npz", f"benchmark.path={tmp_path / 'd.npz'}",
                          "benchmark.scenario=task", "model.mlp_hidden_sizes=[8,8]", "replay.capacity=16", "replay.batch_size=4",
                          "train.batch_size=4", f"method={method}", "device=cpu"])
    result = bench_engine(config, repeats=2, warmup=1, eval_repeats=1)
    assert result["seq_len"] == 2  # label positions: one head per task
    assert result["plain_tokens_per_s"] == pytest.approx(4 / result["plain_step_ms"] * 1e3)  # one token per example
    assert result["memory_episodes"] == 16 and ("sleep_ratio" in result) == (method == "cls")
