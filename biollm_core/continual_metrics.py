"""Continual-learning metrics from an accuracy matrix (spec §8): pure functions.

``A[i][j]`` is the accuracy on task j's held-out set after training segment i; ``segment_tasks[i]`` is
the task trained in segment i (``i`` for the sequential protocol). Task j counts as seen by row i once a
segment <= i trained it.
"""

from __future__ import annotations

from collections.abc import Sequence


def seen_tasks(segment_tasks: Sequence[int], row: int) -> list[int]:
    return sorted(set(segment_tasks[: row + 1]))


def seen_accuracy(matrix: Sequence[Sequence[float]], segment_tasks: Sequence[int], row: int) -> float:
    """Mean accuracy of row ``row`` over the tasks seen by then."""
    tasks = seen_tasks(segment_tasks, row)
    return sum(matrix[row][j] for j in tasks) / len(tasks)


def accuracy_matrix_metrics(matrix: Sequence[Sequence[float]], segment_tasks: Sequence[int]) -> dict[str, float]:
    """-> seen_acc_avg (last row), forgetting, bwt and seen_acc_auc of the matrix.

    forgetting = mean over tasks j seen before the last row of (max_{k<last} A[k][j] - A[last][j]), k from
    the first row that saw j; bwt = mean over those j of (A[last][j] - A[first_j][j]), first_j the row that
    first trained j; seen_acc_auc = mean over rows of the seen accuracy. With one row, forgetting and bwt
    are 0 (nothing earlier to forget).
    """
    rows = len(matrix)
    if rows == 0:
        raise ValueError("empty accuracy matrix")
    last = rows - 1
    first_row = {}
    for i, task in enumerate(segment_tasks[:rows]):
        first_row.setdefault(task, i)
    earlier = [j for j in seen_tasks(segment_tasks, last - 1)] if last > 0 else []
    forgetting = [max(matrix[k][j] for k in range(first_row[j], last)) - matrix[last][j] for j in earlier]
    backward = [matrix[last][j] - matrix[first_row[j]][j] for j in earlier]
    return {
        "seen_acc_avg": seen_accuracy(matrix, segment_tasks, last),
        "forgetting": sum(forgetting) / len(forgetting) if forgetting else 0.0,
        "bwt": sum(backward) / len(backward) if backward else 0.0,
        "seen_acc_auc": sum(seen_accuracy(matrix, segment_tasks, i) for i in range(rows)) / rows,
    }
