"""Per-step records buffered as device tensors and converted on flush."""

from __future__ import annotations

import time

import pytest
import torch

from biollm_core.step_log import StepLog


def test_flush_converts_tensors_and_keeps_other_values() -> None:
    log = StepLog()
    log.add(1, {"task_loss": torch.tensor(0.5), "task_id": 0, "note": None}, tokens=100)
    log.add(2, {"task_loss": torch.tensor([0.25]), "seen_acc": 0.75, "replay_size": 8}, tokens=100)
    time.sleep(0.01)
    out = log.flush()
    assert [s for s, _ in out] == [1, 2]
    first, second = out[0][1], out[1][1]
    assert first["task_loss"] == 0.5 and isinstance(first["task_loss"], float)
    assert second["task_loss"] == 0.25  # a one-element tensor becomes a scalar
    assert first["task_id"] == 0 and first["note"] is None and second["seen_acc"] == 0.75
    for record in (first, second):
        assert 0 < record["tokens_per_s"] <= 200 / 0.01  # 200 tokens in at least 10 ms
    assert first["tokens_per_s"] == second["tokens_per_s"]


def test_flush_empties_the_buffer_and_starts_a_new_window() -> None:
    log = StepLog()
    assert log.flush() == []
    log.add(1, {"x": torch.tensor(1.0)}, tokens=10)
    assert len(log.flush()) == 1
    assert log.flush() == []
    log.add(2, {"x": 2.0}, tokens=10)
    (step, record), = log.flush()
    assert step == 2 and record["x"] == 2.0 and record["tokens_per_s"] > 0


def test_integer_tensors_become_numbers() -> None:
    log = StepLog()
    log.add(1, {"count": torch.tensor(3)}, tokens=1)
    assert log.flush()[0][1]["count"] == pytest.approx(3.0)
