"""Forgetting, BWT and seen accuracy from an accuracy matrix (spec §8), worked out by hand."""

from __future__ import annotations

import pytest

from biollm_core.continual_metrics import accuracy_matrix_metrics, anytime_accuracy, forward_transfer, seen_accuracy, seen_tasks

# A[i][j]: accuracy on task j after segment i (sequential: segment i trains task i).
MATRIX = [
    [0.90, 0.10, 0.00],
    [0.95, 0.80, 0.20],
    [0.50, 0.70, 0.95],
]


def test_three_by_three_sequential_by_hand() -> None:
    m = accuracy_matrix_metrics(MATRIX, [0, 1, 2])
    # forgetting over tasks seen before the last row (0, 1):
    #   task 0: max(0.90, 0.95) - 0.50 = 0.45;  task 1: max(0.80) - 0.70 = 0.10  -> mean 0.275
    assert m["forgetting"] == pytest.approx(0.275)
    # bwt: task 0: 0.50 - A[0][0] 0.90 = -0.40;  task 1: 0.70 - A[1][1] 0.80 = -0.10  -> mean -0.25
    assert m["bwt"] == pytest.approx(-0.25)
    # seen accuracy of the last row: (0.50 + 0.70 + 0.95) / 3 = 0.716667
    assert m["seen_acc_avg"] == pytest.approx(2.15 / 3)
    # average incremental accuracy: rows' seen accuracies 0.90, (0.95 + 0.80) / 2 = 0.875, 0.716667 -> 0.830556
    assert m["avg_incremental_acc"] == pytest.approx((0.90 + 0.875 + 2.15 / 3) / 3)


def test_a_single_row_has_nothing_to_forget() -> None:
    m = accuracy_matrix_metrics([[0.8, 0.1]], [0])
    assert m == {"seen_acc_avg": 0.8, "forgetting": 0.0, "bwt": 0.0, "avg_incremental_acc": 0.8}


def test_no_forgetting_when_accuracy_holds() -> None:
    m = accuracy_matrix_metrics([[1.0, 0.0], [1.0, 1.0]], [0, 1])
    assert m["forgetting"] == 0.0 and m["bwt"] == 0.0 and m["seen_acc_avg"] == 1.0


def test_recurring_tasks_use_the_first_training_row() -> None:
    # cycle schedule: segments train tasks 0, 1, 0
    matrix = [[0.9, 0.0], [0.4, 0.8], [0.7, 0.3]]
    m = accuracy_matrix_metrics(matrix, [0, 1, 0])
    # task 0: max(0.9, 0.4) - 0.7 = 0.2;  task 1: 0.8 - 0.3 = 0.5 -> forgetting 0.35
    assert m["forgetting"] == pytest.approx(0.35)
    # bwt: task 0: 0.7 - 0.9 = -0.2;  task 1: 0.3 - 0.8 = -0.5 -> -0.35
    assert m["bwt"] == pytest.approx(-0.35)
    assert seen_tasks([0, 1, 0], 2) == [0, 1]
    assert seen_accuracy(matrix, [0, 1, 0], 0) == 0.9


def test_empty_matrix_is_refused() -> None:
    with pytest.raises(ValueError):
        accuracy_matrix_metrics([], [])


def test_forward_transfer_by_hand() -> None:
    initial = [0.05, 0.10, 0.00]
    # segments 1 and 2 first train tasks 1 and 2: (A[0][1] - 0.10) = 0.0, (A[1][2] - 0.00) = 0.20 -> mean 0.10
    assert forward_transfer(MATRIX, initial, [0, 1, 2]) == pytest.approx(0.10)
    assert forward_transfer(MATRIX[:1], initial, [0]) is None  # no task trained after another
    assert forward_transfer(MATRIX, [], [0, 1, 2]) is None  # no initial row


def test_anytime_accuracy_is_the_mean_of_the_rows() -> None:
    assert anytime_accuracy([0.2, 0.4, 0.9]) == pytest.approx(0.5)
    assert anytime_accuracy([]) is None
