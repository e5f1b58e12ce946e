"""The shared evaluation protocol's bookkeeping: rows, anytime curve, forgetting on earlier tasks only."""

from __future__ import annotations

import pytest

from biollm_core.evaluate import TaskScores
from biollm_core.evaluation_protocol import EvaluationState


def scores(accuracy: list[float], loss: list[float]) -> TaskScores:
    return TaskScores(base_accuracy=[a / 2 for a in accuracy], base_loss=loss, combined_accuracy=accuracy, combined_loss=loss)


def test_rows_curve_and_forgetting_on_tasks_before_the_current_one() -> None:
    state = EvaluationState()
    state.begin_step(0, first_of_segment=True)
    out = state.record(10, [0], scores([0.8], [1.0]), segment_end=False, anytime=True)
    assert out == {"seen_acc": 0.8, "base_seen_acc": 0.4, "anytime_row": 0}
    assert state.old_task_loss is None and state.forgetting_index == 0.0  # learning task 0 is not forgetting
    state.record(20, [0, 1], scores([0.9, 0.0], [0.5, 3.0]), segment_end=True, anytime=True)
    state.begin_step(1, first_of_segment=True)
    state.record(30, [0, 1], scores([0.7, 0.6], [0.6, 2.0]), segment_end=False, anytime=True)
    assert state.old_task_loss == 0.6 and state.forgetting_index == 0.0  # best so far: 0.6 (task 0 only)
    state.record(40, [0, 1], scores([0.5, 1.0], [0.9, 0.1]), segment_end=True, anytime=True)
    assert state.forgetting_index == pytest.approx(0.3)  # task 0's loss rose from 0.6 to 0.9
    summary = state.summary()
    assert summary["accuracy_matrix"] == [[0.9, 0.0], [0.5, 1.0]]
    assert summary["final_seen_acc_avg"] == 0.75
    assert summary["anytime_acc"] == pytest.approx((0.8 + 0.9 + 0.65 + 0.75) / 4)
    assert summary["base_anytime_acc"] == pytest.approx((0.4 + 0.45 + 0.325 + 0.375) / 4)
    assert summary["anytime_steps"] == [10, 20, 30, 40]
    assert summary["final_fwt"] is None  # no initial row was recorded
