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
    """-> seen_acc_avg (last row), forgetting, bwt and avg_incremental_acc of the matrix.

    forgetting = mean over tasks j seen before the last row of (max_{k<last} A[k][j] - A[last][j]), k from
    the first row that saw j (Chaudhry et al. 2018); bwt = mean over those j of (A[last][j] - A[first_j][j]),
    first_j the row that first trained j (Lopez-Paz and Ranzato 2017); avg_incremental_acc = mean over rows
    of each row's seen accuracy. With one row, forgetting and bwt are 0 (nothing earlier to forget).
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
        "avg_incremental_acc": sum(seen_accuracy(matrix, segment_tasks, i) for i in range(rows)) / rows,
    }


def forward_transfer(matrix: Sequence[Sequence[float]], initial: Sequence[float], segment_tasks: Sequence[int]) -> float | None:
    """fwt = mean over segments i >= 1 that first train a task t of (A[i-1][t] - A_init[t]) (Lopez-Paz and
    Ranzato 2017): how much earlier tasks helped a task before it was trained. None without an initial
    row or a second segment."""
    if not initial:
        return None
    first: dict[int, int] = {}
    for i, task in enumerate(segment_tasks[: len(matrix)]):
        first.setdefault(task, i)
    gains = [matrix[i - 1][task] - initial[task] for task, i in first.items() if i >= 1]
    return sum(gains) / len(gains) if gains else None


def anytime_accuracy(seen_accuracies: Sequence[float]) -> float | None:
    """Mean of the anytime rows' seen-task accuracies: the area under the seen-accuracy curve over the
    run, normalised by its length (rows are equally spaced). None without rows."""
    return sum(seen_accuracies) / len(seen_accuracies) if seen_accuracies else None
