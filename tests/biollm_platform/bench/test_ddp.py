"""`biollm bench ddp` on a tiny config (real gloo groups of local processes): the shape and consistency
of its figures, never their speed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.app import app

TINY = ["train=cpu", "benchmark.num_tasks=2", "benchmark.heldout_size=8", "replay.capacity=64", "replay.batch_size=8",
        "train.batch_size=8"]


@pytest.mark.slow
def test_bench_ddp_times_one_and_two_ranks_and_ddp() -> None:
    result = CliRunner().invoke(app, ["bench", "ddp", *TINY, "--steps", "2", "--warmup", "1", "--compare-ddp", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    one, two = out["world_sizes"]["1"], out["world_sizes"]["2"]
    assert one["comm_ms"] == 0.0 and two["comm_ms"] > 0  # W = 1 has no collective; W = 2 sums every step's gradients
    assert two["sleep_comm_ms"] > 0 and one["torch_threads"] == two["torch_threads"] == 1
    for figures in (one, two):
        assert figures["step_ms"] > 0 and figures["steps_per_s"] == pytest.approx(1e3 / figures["step_ms"])
    # the global batch (8 x 16 tokens) is the same at every W: tokens/s compare the same work
    assert one["tokens_per_s"] / one["steps_per_s"] == two["tokens_per_s"] / two["steps_per_s"] == 8 * 16
    assert out["tokens_per_s_ratio"] == pytest.approx(two["tokens_per_s"] / one["tokens_per_s"])
    assert out["sleep_tokens_per_s_ratio"] == pytest.approx(two["sleep_tokens_per_s"] / one["sleep_tokens_per_s"])
    assert out["ddp"]["allreduce_step_ms"] > 0 and out["ddp"]["ddp_step_ms"] > 0
