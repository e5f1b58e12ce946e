"""Learning that is real: on the cued toy stream the hippocampus learns each task while awake, and only
sleep moves that knowledge into the neocortex (the base model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_core.config.loader import load_config
from biollm_core.runner import run_experiment

CHANCE = 1 / 64  # model.vocab_size of the toy preset
# Two tasks of the train=cpu preset: the first full sleep/refresh cycles, at half the cost of the stream.
STREAM = ["train=cpu", "benchmark.num_tasks=2"]


@pytest.mark.slow
def test_sleep_consolidates_into_the_base_model_and_nosleep_does_not(tmp_path: Path) -> None:
    sleep = run_experiment(load_config([*STREAM, "method=cls"]), tmp_path / "sleep")
    nosleep = run_experiment(load_config([*STREAM, "method=nosleep"]), tmp_path / "nosleep")
    for name in ("sleep", "nosleep"):
        # Awake, the combined model masters the current task by the end of every segment (its last batch).
        records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        assert all(r["train_acc"] > 0.9 for r in records if "segment_end" in r)
    # Consolidation: after sleeps the neocortex alone answers the first task far above chance...
    assert sleep["base_accuracy_matrix"][-1][0] > 0.5
    assert sleep["sleep_count"] > 0 and sleep["base_updates_in_sleep"] > 0
    # ...while without sleep it never trains and stays at chance.
    assert max(nosleep["base_accuracy_matrix"][-1]) < 4 * CHANCE


@pytest.mark.slow
def test_the_baselines_keep_the_fields_known_ordering(tmp_path: Path) -> None:
    """Fine-tuning forgets, replay holds, joint training is the ceiling (two tasks of the toy stream)."""
    final = {
        m: run_experiment(load_config([*STREAM, f"method={m}"]), tmp_path / m)["accuracy_matrix"][-1] for m in ("finetune", "er", "joint")
    }
    assert final["finetune"][1] > 0.9 and final["finetune"][0] < 0.3  # learns the new task, forgets the first
    assert min(final["er"]) > 0.9  # a reservoir of replay.capacity episodes holds both
    assert min(final["joint"]) > 0.9
