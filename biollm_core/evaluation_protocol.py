"""The evaluation protocol (spec §8), the same for every method: when rows are taken and what they hold.

- an initial row before the first step (every task; ``A_init`` of forward transfer);
- a segment-end row after each task segment, after the method's end-of-step work (every task: one row
  of the accuracy matrix, for the answering model and for the neocortex alone);
- an anytime row every ``train.eval_interval`` training steps (the tasks seen so far): the curve whose
  mean is ``anytime_acc``, what a user of the model gets between consolidations.

Each evaluation also updates the loss-based forgetting index: the answering model's mean held-out loss
on the tasks seen *before* the current one, above its best so far (learning the current task never
reads as forgetting). ``EvaluationState`` is what a checkpoint restores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biollm_core.continual_metrics import accuracy_matrix_metrics, anytime_accuracy, forward_transfer
from biollm_core.evaluate import TaskScores


@dataclass
class EvaluationState:
    segment_tasks: list[int] = field(default_factory=list)  # task of each segment begun so far
    init_row: list[float] | None = None  # answering model, before the first step
    base_init_row: list[float] | None = None
    matrix: list[list[float]] = field(default_factory=list)  # answering model, one row per segment end
    base_matrix: list[list[float]] = field(default_factory=list)
    anytime: list[list[float]] = field(default_factory=list)  # [step, seen accuracy, base seen accuracy]
    old_task_loss: float | None = None
    base_old_task_loss: float | None = None
    best_old_task_loss: float = float("inf")
    base_best_old_task_loss: float = float("inf")
    forgetting_index: float = 0.0
    base_forgetting_index: float = 0.0
    evaluated_at: int | None = None  # step of the latest evaluation

    def record_initial(self, scores: TaskScores) -> None:
        """A_init: every task before the first step (forward transfer's reference)."""
        self.init_row, self.base_init_row = scores.combined_accuracy, scores.base_accuracy

    def begin_step(self, task_id: int, first_of_segment: bool) -> None:
        if first_of_segment:
            self.segment_tasks.append(task_id)

    def seen_tasks(self) -> list[int]:
        return sorted(set(self.segment_tasks))

    def old_tasks(self) -> list[int]:
        """Tasks seen before the current segment's task (the forgetting signal's tasks)."""
        current = self.segment_tasks[-1] if self.segment_tasks else None
        return sorted(set(self.segment_tasks[:-1]) - {current})

    def record(self, step: int, tasks: list[int], scores: TaskScores, *, segment_end: bool, anytime: bool) -> dict[str, Any]:
        """Fold one evaluation of ``tasks`` (``scores`` index = position in ``tasks``) into the state;
        returns the figures for this step's metrics record."""
        pos = {task: i for i, task in enumerate(tasks)}
        seen, old = self.seen_tasks(), self.old_tasks()
        seen_acc = float(np.mean([scores.combined_accuracy[pos[j]] for j in seen]))
        base_seen_acc = float(np.mean([scores.base_accuracy[pos[j]] for j in seen]))
        if old:
            self.old_task_loss = float(np.mean([scores.combined_loss[pos[j]] for j in old]))
            self.base_old_task_loss = float(np.mean([scores.base_loss[pos[j]] for j in old]))
            self.best_old_task_loss = min(self.best_old_task_loss, self.old_task_loss)
            self.base_best_old_task_loss = min(self.base_best_old_task_loss, self.base_old_task_loss)
            self.forgetting_index = max(0.0, self.old_task_loss - self.best_old_task_loss)
            self.base_forgetting_index = max(0.0, self.base_old_task_loss - self.base_best_old_task_loss)
        self.evaluated_at = step
        out: dict[str, Any] = {"seen_acc": seen_acc, "base_seen_acc": base_seen_acc}
        if anytime:
            self.anytime.append([step, seen_acc, base_seen_acc])
            out["anytime_row"] = len(self.anytime) - 1
        if segment_end:
            self.matrix.append(scores.combined_accuracy)
            self.base_matrix.append(scores.base_accuracy)
            out["segment_end"] = len(self.matrix) - 1
        return out

    def losses(self) -> dict[str, Any]:
        """The latest loss-based figures, carried on every metrics record."""
        return {"old_task_loss": self.old_task_loss, "forgetting_index": self.forgetting_index,
                "base_old_task_loss": self.base_old_task_loss, "base_forgetting_index": self.base_forgetting_index}

    def summary(self) -> dict[str, Any]:
        """The protocol's part of summary.json: both models' matrix metrics, fwt and anytime accuracy."""
        combined = accuracy_matrix_metrics(self.matrix, self.segment_tasks)
        base = accuracy_matrix_metrics(self.base_matrix, self.segment_tasks)
        return {
            "final_seen_acc_avg": combined["seen_acc_avg"], "final_forgetting": combined["forgetting"],
            "final_bwt": combined["bwt"], "final_fwt": forward_transfer(self.matrix, self.init_row or [], self.segment_tasks),
            "avg_incremental_acc": combined["avg_incremental_acc"],
            "anytime_acc": anytime_accuracy([row[1] for row in self.anytime]),
            "final_base_seen_acc_avg": base["seen_acc_avg"], "final_base_forgetting": base["forgetting"],
            "final_base_bwt": base["bwt"],
            "final_base_fwt": forward_transfer(self.base_matrix, self.base_init_row or [], self.segment_tasks),
            "base_avg_incremental_acc": base["avg_incremental_acc"],
            "base_anytime_acc": anytime_accuracy([row[2] for row in self.anytime]),
            "final_forgetting_index": self.forgetting_index, "final_old_task_loss": self.old_task_loss,
            "final_base_forgetting_index": self.base_forgetting_index,
            "accuracy_matrix": self.matrix, "base_accuracy_matrix": self.base_matrix, "segment_tasks": self.segment_tasks,
            "initial_accuracy": self.init_row, "base_initial_accuracy": self.base_init_row,
            "anytime_steps": [int(row[0]) for row in self.anytime],
        }
