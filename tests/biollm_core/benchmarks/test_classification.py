"""Split and permuted classification streams: the scenarios' label forms (the head masking), class
groups, the held-out split, and batches as pure functions of their index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biollm_core.benchmarks.classification import (
    IGNORE,
    build_permuted_classification,
    build_split_classification,
    class_groups,
    heldout_rows,
    scenario_labels,
)
from biollm_core.benchmarks.classification_data import LabelledData
from biollm_core.errors import UserError
from biollm_core.protocols import FeatureBenchmark


def toy_data(classes: int = 6, per_class: int = 10, features: int = 5) -> LabelledData:
    """Example i of class c has every feature equal to c + i / 100: rows are recognisable."""
    y = np.repeat(np.arange(classes), per_class)
    x = (y + np.tile(np.arange(per_class), classes) / 100)[:, None].repeat(features, 1).astype(np.float32)
    return LabelledData(x, y, list(range(classes)), "toy")


SETTINGS = dict(epochs_per_task=2, heldout_fraction=0.2, heldout_seed=0, batch_size=4, seed=3)


def test_task_incremental_labels_supervise_only_the_tasks_own_head() -> None:
    within, overall = np.array([0, 1, 1]), np.array([4, 5, 5])
    labels = scenario_labels(within, overall, task=2, scenario="task", num_tasks=3)
    assert labels.tolist() == [[IGNORE, IGNORE, 0], [IGNORE, IGNORE, 1], [IGNORE, IGNORE, 1]]


def test_domain_incremental_labels_are_the_class_within_the_task_and_class_incremental_the_class_itself() -> None:
    within, overall = np.array([0, 1]), np.array([4, 5])
    assert scenario_labels(within, overall, 2, "domain", 3).tolist() == [[0], [1]]
    assert scenario_labels(within, overall, 2, "class", 3).tolist() == [[4], [5]]


def test_class_groups_in_order_seeded_and_cut() -> None:
    assert class_groups(10, 2, None, "fixed", seed=0) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert class_groups(7, 3, None, "fixed", seed=0) == [[0, 1, 2], [3, 4, 5], [6]]  # the last group takes the rest
    assert class_groups(10, 2, 2, "fixed", seed=0) == [[0, 1], [2, 3]]
    seeded = class_groups(10, 2, None, "seeded", seed=5)
    assert seeded == class_groups(10, 2, None, "seeded", seed=5) != class_groups(10, 2, None, "seeded", seed=6)
    assert sorted(c for group in seeded for c in group) == list(range(10)) and seeded != class_groups(10, 2, None, "fixed", 5)
    with pytest.raises(UserError, match="num_tasks=6, but 10 classes in groups of 2 make 5 tasks"):
        class_groups(10, 2, 6, "fixed", seed=0)
    with pytest.raises(UserError, match="classes_per_task=11 exceeds"):
        class_groups(10, 11, None, "fixed", seed=0)


def test_heldout_split_is_per_class_and_fixed_by_its_own_seed() -> None:
    y = np.repeat(np.arange(3), [10, 20, 2])
    held = heldout_rows(y, 0.2, seed=0)
    assert [int(held[y == c].sum()) for c in range(3)] == [2, 4, 1]  # at least one, at most n - 1 of each class
    assert np.array_equal(held, heldout_rows(y, 0.2, seed=0)) and not np.array_equal(held, heldout_rows(y, 0.2, seed=1))
    with pytest.raises(UserError, match="class 0 has 1 example"):
        heldout_rows(np.array([0, 1, 1]), 0.5, seed=0)


@pytest.mark.parametrize(("scenario", "heads", "classes"), [("task", 3, 2), ("domain", 1, 2), ("class", 1, 6)])
def test_split_stream_shapes_and_label_forms(scenario: str, heads: int, classes: int) -> None:
    bench = build_split_classification(data=toy_data(), classes_per_task=2, num_tasks=None, class_order="fixed",
                                       scenario=scenario, **SETTINGS)
    assert isinstance(bench, FeatureBenchmark)
    assert (bench.num_tasks, bench.num_heads, bench.num_classes, bench.input_dim, bench.input_vocab_size) == (3, heads, classes, 5, 0)
    assert bench.steps_per_task == [8, 8, 8]  # ceil(2 epochs * 16 training examples / batch 4)
    assert bench.total_steps == 24 and bench.segment_ends() == [7, 15, 23]
    for task in range(3):
        held = bench.heldout(task)
        assert held.input_ids.shape == (4, 5) and held.input_ids.dtype == torch.float32
        digits = held.input_ids[:, 0].floor().long()  # the class each example really is
        assert set(digits.tolist()) == {2 * task, 2 * task + 1}
        if scenario == "task":
            assert (held.labels[:, task] == digits - 2 * task).all()
            assert (held.labels[:, [t for t in range(3) if t != task]] == IGNORE).all()
        else:
            expected = digits - 2 * task if scenario == "domain" else digits
            assert held.labels[:, 0].tolist() == expected.tolist()
    train = [bench.train_batch(step, 4) for step in range(24)]
    assert [b.task_id for b in train] == [0] * 8 + [1] * 8 + [2] * 8
    held_rows = {float(v) for task in range(3) for v in bench.heldout(task).input_ids[:, 0]}
    assert not held_rows & {float(v) for b in train for v in b.input_ids[:, 0]}  # held-out examples never train


def test_every_epoch_visits_each_training_example_once_and_batches_are_pure_functions_of_their_index() -> None:
    bench = build_split_classification(data=toy_data(), classes_per_task=2, num_tasks=1, class_order="fixed",
                                       scenario="class", **SETTINGS)
    epoch = torch.cat([bench.train_batch(step, 4).input_ids[:, 0] for step in range(4)])  # 16 examples, batch 4
    assert sorted(epoch.tolist()) == sorted(bench.tasks[0].train_x[:, 0].tolist())
    again = build_split_classification(data=toy_data(), classes_per_task=2, num_tasks=1, class_order="fixed",
                                       scenario="class", **SETTINGS)
    assert torch.equal(again.train_batch(3, 4).input_ids, bench.train_batch(3, 4).input_ids)
    assert torch.equal(bench.task_batch(0, 3, 4).labels, bench.train_batch(3, 4).labels)


def test_permuted_stream_keeps_task_zero_and_permutes_every_other_task_with_the_seed() -> None:
    data = toy_data(classes=3, features=6)
    data = LabelledData(data.x * np.arange(1, 7, dtype=np.float32), data.y, data.classes, "toy")  # features differ
    bench = build_permuted_classification(data=data, num_tasks=3, scenario="class", **SETTINGS)
    assert (bench.num_heads, bench.num_classes) == (1, 9)  # class-incremental: task * classes + class
    zero, one = bench.heldout(0), bench.heldout(1)
    assert torch.equal(zero.input_ids[:, 0] * 2, zero.input_ids[:, 1])  # task 0: the features as they are
    assert torch.equal(one.input_ids.sort(1).values, zero.input_ids.sort(1).values)  # the same pixels, moved
    assert not torch.equal(one.input_ids, zero.input_ids)
    assert torch.equal(one.labels, zero.labels + 3)
    domain = build_permuted_classification(data=data, num_tasks=3, scenario="domain", **SETTINGS)
    assert domain.num_classes == 3 and torch.equal(domain.heldout(2).labels, zero.labels)
    reseeded = build_permuted_classification(data=data, num_tasks=3, scenario="domain", **{**SETTINGS, "seed": 4})
    assert not torch.equal(reseeded.heldout(1).input_ids, domain.heldout(1).input_ids)
