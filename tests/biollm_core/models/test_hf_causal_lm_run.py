"""End to end: wake + sleep + refresh with tiny local HF models on the generated instruction stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from biollm_core.config.loader import load_config
from biollm_core.runner import run_experiment

NUM_TASKS = 8  # the generator's tasks


def _overrides(model_dir: Path, instructions_path: Path, *extra: str) -> list[str]:
    return [
        "model=hf_causal_lm",
        "benchmark=instruction",
        "train=cpu",
        f"model.hf_model_name={model_dir}",
        "model.hf_local_files_only=true",
        "model.vocab_size=384",
        f"benchmark.local_path={instructions_path}",
        "benchmark.seq_len=32",
        "benchmark.steps_per_task=3",
        "benchmark.heldout_per_task=4",
        "train.batch_size=4",
        "train.eval_interval=3",
        "train.eval_batch_size=32",
        "experts.num_experts=4",
        "replay.capacity=64",
        "replay.batch_size=4",
        "consolidation.sleep_min_interval=6",
        "consolidation.sleep_max_interval=6",
        "consolidation.min_sleep_steps=2",
        "consolidation.max_sleep_steps=2",
        "consolidation.refresh.policy=all",
        "logging.checkpoint_interval=12",
        *extra,
    ]


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("qwen2", ["model.hf_injection_fraction=0.5", "model.consolidate_top_blocks=1"]),
        ("gpt2", []),
    ],
)
def test_wake_sleep_refresh_on_generated_instructions(
    request: pytest.FixtureRequest, instructions_path: Path, tmp_path: Path, model: str, extra: list[str]
) -> None:
    model_dir = request.getfixturevalue(f"{model}_dir")
    config = load_config(_overrides(model_dir, instructions_path, *extra))
    summary = run_experiment(config, tmp_path)

    steps = NUM_TASKS * 3
    assert summary["steps"] == steps
    assert summary["sleep_count"] == steps // 6
    assert summary["base_updates_in_sleep"] > 0
    assert summary["refresh_count_total"] == summary["sleep_count"] * 4  # policy=all resets every expert
    assert len(summary["accuracy_matrix"]) == NUM_TASKS
    assert all(len(row) == NUM_TASKS for row in summary["base_accuracy_matrix"])
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in records if "segment_end" in r] == list(range(NUM_TASKS))
    assert any((r.get("distill_kl") or 0) > 0 for r in records)
    assert (tmp_path / "summary.json").is_file()

    # sleep trained the consolidated parameters and nothing else
    final = sorted((tmp_path / "checkpoints").iterdir())[-1] / "state.pt"
    trained = torch.load(final, weights_only=True)["method"]["neocortex"]
    initial = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).state_dict()
    changed = {name for name, value in initial.items() if not torch.equal(trained[f"model.{name}"], value)}
    if model == "qwen2":  # consolidate_top_blocks=1 of 4
        assert changed and all(
            name.startswith(("model.layers.3.", "model.norm.", "lm_head.")) for name in changed
        )
    else:
        assert {"transformer.h.0.attn.c_attn.weight", "lm_head.weight"} <= changed
