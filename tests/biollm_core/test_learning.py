"""Learning that is real: on the cued toy stream the hippocampus learns each task while awake, and only
sleep moves that knowledge into the neocortex (the base model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from biollm_core.config.loader import load_config
from biollm_core.runner import run_experiment

CHANCE = 1 / 64  # model.vocab_size of the toy preset
# Two tasks of the train=cpu preset: the first full sleep/refresh cycles, at half the cost of the stream.
STREAM = ["train=cpu", "benchmark.num_tasks=2"]


@pytest.mark.slow
def test_sleep_consolidates_into_the_base_model_and_nosleep_does_not(tmp_path: Path) -> None:
    sleep = run_experiment(load_config([*STREAM, "mode=sleep"]), tmp_path / "sleep")
    nosleep = run_experiment(load_config([*STREAM, "mode=nosleep"]), tmp_path / "nosleep")
    for summary in (sleep, nosleep):
        # The combined model masters the current task by the end of every segment.
        for row, task in enumerate(summary["segment_tasks"]):
            assert summary["accuracy_matrix"][row][task] > 0.9
    # Consolidation: after sleeps the neocortex alone answers the first task far above chance...
    assert sleep["base_accuracy_matrix"][-1][0] > 0.5
    assert sleep["sleep_count"] > 0 and sleep["base_updates_in_sleep"] > 0
    # ...while without sleep it never trains and stays at chance.
    assert max(nosleep["base_accuracy_matrix"][-1]) < 4 * CHANCE
