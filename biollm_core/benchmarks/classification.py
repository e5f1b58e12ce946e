"""Classic classification streams (spec §7): Split and Permuted MNIST, or the same on a user's data.

- ``split_classification``: task t learns the t-th group of ``classes_per_task`` classes, in class order
  (``class_order=fixed``: 0/1, 2/3, ...) or in an order drawn from the run's seed (``seeded``).
- ``permuted_classification``: every task learns every class; task 0 sees the features as they are,
  task t >= 1 through its own pixel permutation drawn from the run's seed (Hsu et al. 2018's layout).

``scenario`` (van de Ven and Tolias 2019; Hsu et al. 2018) fixes what the labels ask for:

- ``task``: task-incremental, the task is known: one output head per task, and an example's labels
  supervise only its own task's head (labels (N, tasks), -100 elsewhere), so both training and
  evaluation choose among that task's classes only: the per-task head mask is carried by the labels,
  and every method, the replay buffer and the evaluation apply it without knowing of it;
- ``domain``: domain-incremental: one shared head over the classes within a task (its index there);
- ``class``: class-incremental: one head over every class seen in the stream (split: the class id;
  permuted: task * classes + class).

Each class's examples are split once into training and held-out (``heldout_fraction``, drawn with
``heldout_seed``, the same for every run seed, so all runs are scored on the same examples); a task's
held-out set is the held-out examples of its classes. A task trains for ``epochs_per_task`` passes over
its training examples: batch i of a task is elements [i*B, (i+1)*B) of its stream of epochs, each epoch
a permutation drawn from (seed, task, epoch), so any batch is a pure function of its index (exact
resume; joint's and EWC's draws use the same function).
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from biollm_core.benchmarks.classification_data import LabelledData
from biollm_core.errors import UserError
from biollm_core.protocols import Batch

log = logging.getLogger(__name__)
IGNORE = -100


@dataclass(frozen=True)
class TaskExamples:
    """One task's examples in the scenario's label form."""

    train_x: torch.Tensor  # (N, D) float32
    train_y: torch.Tensor  # (N, L) long, -100 = unsupervised head
    heldout_x: torch.Tensor  # (M, D)
    heldout_y: torch.Tensor  # (M, L)
    classes: list[int]  # the original labels this task learns


def heldout_rows(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Bool (N,): ``round(fraction * n_c)`` examples of each class c held out (at least one, at most n_c - 1)."""
    held = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if len(rows) < 2:
            raise UserError(f"class {c} has {len(rows)} example(s): each class needs one for training and one held out")
        count = min(max(round(fraction * len(rows)), 1), len(rows) - 1)
        held[np.random.default_rng([seed % 2**63, int(c)]).permutation(rows)[:count]] = True
    return held


def scenario_labels(within: np.ndarray, overall: np.ndarray, task: int, scenario: str, num_tasks: int) -> np.ndarray:
    """(N,) class index within the task and over the stream -> (N, L) labels of ``scenario``."""
    if scenario == "task":
        labels = np.full((len(within), num_tasks), IGNORE, dtype=np.int64)
        labels[:, task] = within
        return labels
    return (within if scenario == "domain" else overall).astype(np.int64)[:, None]


def class_groups(num_classes: int, classes_per_task: int, num_tasks: int | None, class_order: str, seed: int) -> list[list[int]]:
    """The class ids each split task learns, in stream order."""
    if classes_per_task > num_classes:
        raise UserError(f"benchmark.classes_per_task={classes_per_task} exceeds the data's {num_classes} classes")
    order = list(range(num_classes))
    if class_order == "seeded":
        order = np.random.default_rng([seed % 2**63, 17]).permutation(num_classes).tolist()
    groups = [order[i : i + classes_per_task] for i in range(0, num_classes, classes_per_task)]
    if num_tasks is not None:
        if num_tasks > len(groups):
            raise UserError(f"benchmark.num_tasks={num_tasks}, but {num_classes} classes in groups of {classes_per_task} "
                            f"make {len(groups)} tasks")
        groups = groups[:num_tasks]
    return groups


class ClassificationBenchmark:
    """Implements ``FeatureBenchmark`` over per-task example sets."""

    def __init__(
        self, *, tasks: list[TaskExamples], num_classes: int, epochs_per_task: int, batch_size: int, seed: int,
        total_steps: int | None = None,
    ) -> None:
        self.tasks, self.seed = tasks, seed
        self.num_tasks = len(tasks)
        self.input_vocab_size = 0  # no token inputs
        self.input_dim = tasks[0].train_x.shape[1]
        self.num_heads = tasks[0].train_y.shape[1]
        self.num_classes = num_classes
        self.steps_per_task = [math.ceil(epochs_per_task * len(t.train_x) / batch_size) for t in tasks]
        self.task_starts = [0, *np.cumsum(self.steps_per_task).tolist()[:-1]]
        self.total_steps = total_steps if total_steps is not None else sum(self.steps_per_task)

    def task_at(self, step: int) -> int:
        return bisect.bisect_right(self.task_starts, step) - 1

    def segment_ends(self) -> list[int]:
        ends = [start + steps - 1 for start, steps in zip(self.task_starts, self.steps_per_task, strict=True)]
        return sorted({end for end in ends[:-1] if end < self.total_steps - 1} | {self.total_steps - 1})

    def train_batch(self, step: int, batch_size: int) -> Batch:
        task = self.task_at(step)
        return self.task_batch(task, step - self.task_starts[task], batch_size)

    def task_batch(self, task_id: int, index: int, batch_size: int) -> Batch:
        examples = self.tasks[task_id]
        n = len(examples.train_x)
        positions = np.arange(index * batch_size, (index + 1) * batch_size)  # in the task's stream of epochs
        epochs = positions // n
        rows = np.empty(batch_size, dtype=np.int64)
        for epoch in np.unique(epochs):
            order = np.random.default_rng([self.seed % 2**63, task_id, int(epoch)]).permutation(n)
            chosen = epochs == epoch
            rows[chosen] = order[positions[chosen] % n]
        index_tensor = torch.from_numpy(rows)
        return Batch(examples.train_x[index_tensor], examples.train_y[index_tensor], task_id)

    def train_size(self, batch_size: int) -> int:
        return sum(len(t.train_x) for t in self.tasks)

    def heldout(self, task_id: int) -> Batch:
        return Batch(self.tasks[task_id].heldout_x, self.tasks[task_id].heldout_y, task_id)


def _examples(
    x: np.ndarray, within: np.ndarray, overall: np.ndarray, task: int, scenario: str, num_tasks: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) float32 features and (N, L) labels of ``scenario``, as tensors."""
    labels = scenario_labels(within, overall, task, scenario, num_tasks)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(labels)


def build_split_classification(
    *, data: LabelledData, classes_per_task: int, num_tasks: int | None, class_order: str, scenario: str,
    epochs_per_task: int, heldout_fraction: float, heldout_seed: int, batch_size: int, seed: int, total_steps: int | None = None,
) -> ClassificationBenchmark:
    n_classes = len(data.classes)
    groups = class_groups(n_classes, classes_per_task, num_tasks, class_order, seed)
    held = heldout_rows(data.y, heldout_fraction, heldout_seed)
    tasks = []
    for task, group in enumerate(groups):
        within_of = {c: i for i, c in enumerate(group)}
        parts = []
        for rows in (~held, held):
            rows = rows & np.isin(data.y, group)
            y = data.y[rows]
            parts.append(_examples(data.x[rows], np.array([within_of[c] for c in y]), y, task, scenario, len(groups)))
        (train_x, train_y), (heldout_x, heldout_y) = parts
        tasks.append(TaskExamples(train_x, train_y, heldout_x, heldout_y, [data.classes[c] for c in group]))
    width = {"task": classes_per_task, "domain": classes_per_task, "class": n_classes}[scenario]
    log.info("split_classification (%s, %s-incremental): tasks %s, %d train / %d held-out examples", data.source, scenario,
             [t.classes for t in tasks], int((~held).sum()), int(held.sum()))
    return ClassificationBenchmark(tasks=tasks, num_classes=width, epochs_per_task=epochs_per_task, batch_size=batch_size,
                                   seed=seed, total_steps=total_steps)


def build_permuted_classification(
    *, data: LabelledData, num_tasks: int, scenario: str, epochs_per_task: int, heldout_fraction: float, heldout_seed: int,
    batch_size: int, seed: int, total_steps: int | None = None,
) -> ClassificationBenchmark:
    n_classes, n_features = len(data.classes), data.x.shape[1]
    held = heldout_rows(data.y, heldout_fraction, heldout_seed)
    tasks = []
    for task in range(num_tasks):
        permutation = np.arange(n_features) if task == 0 else np.random.default_rng([seed % 2**63, 31, task]).permutation(n_features)
        parts = [_examples(data.x[rows][:, permutation], data.y[rows], task * n_classes + data.y[rows], task, scenario, num_tasks)
                 for rows in (~held, held)]
        (train_x, train_y), (heldout_x, heldout_y) = parts
        tasks.append(TaskExamples(train_x, train_y, heldout_x, heldout_y, list(data.classes)))
    width = n_classes * (num_tasks if scenario == "class" else 1)
    log.info("permuted_classification (%s, %s-incremental): %d tasks, %d train / %d held-out examples each", data.source,
             scenario, num_tasks, int((~held).sum()), int(held.sum()))
    return ClassificationBenchmark(tasks=tasks, num_classes=width, epochs_per_task=epochs_per_task, batch_size=batch_size,
                                   seed=seed, total_steps=total_steps)
