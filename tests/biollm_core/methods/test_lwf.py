"""LwF's distillation term against hand values."""

from __future__ import annotations

import math

import pytest
import torch

from biollm_core.methods.lwf import lwf_distillation, supervised_classes


def test_distillation_is_zero_for_the_same_logits_and_t2_kl_otherwise() -> None:
    teacher = torch.tensor([[[2.0, 0.0]]])
    mask = torch.tensor([[True]])
    assert lwf_distillation(teacher, teacher, mask, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    student = torch.tensor([[[0.0, 0.0]]])
    p = torch.tensor([math.exp(1), 1.0]) / (math.exp(1) + 1)  # softmax(teacher / 2)
    kl = float((p * (p.log() - math.log(0.5))).sum())
    assert lwf_distillation(student, teacher, mask, 2.0).item() == pytest.approx(4 * kl, rel=1e-5)
    assert lwf_distillation(student, teacher, torch.tensor([[False]]), 2.0).item() == 0.0  # unsupervised: ignored


def test_distillation_over_a_class_subset_is_the_kl_of_the_renormalised_softmaxes() -> None:
    teacher = torch.tensor([[[2.0, 0.0, 9.0]]])  # class 2 is outside the subset: its logit must not count
    student = torch.tensor([[[0.0, 0.0, -5.0]]])
    classes = torch.tensor([[True, True, False]])  # (L, V)
    p = torch.tensor([math.exp(1), 1.0]) / (math.exp(1) + 1)  # softmax([2, 0] / 2)
    kl = float((p * (p.log() - math.log(0.5))).sum())
    mask = torch.tensor([[True]])
    assert lwf_distillation(student, teacher, mask, 2.0, classes).item() == pytest.approx(4 * kl, rel=1e-5)
    student.requires_grad_(True)
    lwf_distillation(student, teacher, mask, 2.0, classes).backward()
    assert student.grad[0, 0, 2] == 0 and torch.isfinite(student.grad).all()  # nothing flows to the new class


def test_supervised_classes_per_head() -> None:
    labels = torch.tensor([[1, -100], [0, -100], [-100, 2]])  # (B, L): two heads of 3 classes
    assert supervised_classes(labels, 3).tolist() == [[True, True, False], [False, False, True]]


def test_a_classifier_distils_only_what_earlier_tasks_supervised(tmp_path) -> None:  # noqa: ANN001
    """Class-incremental: after the task of classes 0/1 the teacher's 0/1 answers are distilled, never its
    logits for the classes the next task brings; task-incremental: only the earlier heads."""
    import numpy as np

    from biollm_core import builders
    from biollm_core.config.loader import load_config
    from biollm_core.methods import MethodContext, build_method
    from biollm_core.methods.protocol import StepInfo

    y = np.repeat(np.arange(4), 10)
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(40, 6)) + y[:, None], y=y)
    for scenario, expected in (("class", [[True, True, False, False]]), ("task", [[True, True], [False, False]])):
        config = load_config(["model=mlp", "benchmark=split_classification", "benchmark.source=npz", f"benchmark.path={tmp_path / 'd.npz'}",
                              f"benchmark.scenario={scenario}", "model.mlp_hidden_sizes=[8]", "model.injection_layer=1",
                              "method=lwf", "device=cpu", "train.batch_size=8"])
        bench = builders.build_benchmark(config)
        config = builders.fit_to_benchmark(config, bench)
        device = torch.device("cpu")
        lwf = build_method(config, MethodContext(bench, device, builders.build_precision(config, device), bench.num_heads, False))
        assert lwf.classes
        first_task_end = bench.segment_ends()[0]
        for step in range(first_task_end + 1):
            lwf.observe(bench.train_batch(step, 8), step)
        lwf.end_of_step(StepInfo(first_task_end + 1, 0, True, 0.0, None))
        assert lwf.old_classes.tolist() == expected
        lwf.observe(bench.train_batch(first_task_end + 1, 8), first_task_end + 1)  # the second task distils
        assert lwf.old_classes.tolist() == expected and lwf.seen.any(0).sum() == (4 if scenario == "class" else 2)
