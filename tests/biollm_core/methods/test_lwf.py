"""LwF's distillation term against hand values."""

from __future__ import annotations

import math

import pytest
import torch

from biollm_core.methods.lwf import lwf_distillation


def test_distillation_is_zero_for_the_same_logits_and_t2_kl_otherwise() -> None:
    teacher = torch.tensor([[[2.0, 0.0]]])
    mask = torch.tensor([[True]])
    assert lwf_distillation(teacher, teacher, mask, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    student = torch.tensor([[[0.0, 0.0]]])
    p = torch.tensor([math.exp(1), 1.0]) / (math.exp(1) + 1)  # softmax(teacher / 2)
    kl = float((p * (p.log() - math.log(0.5))).sum())
    assert lwf_distillation(student, teacher, mask, 2.0).item() == pytest.approx(4 * kl, rel=1e-5)
    assert lwf_distillation(student, teacher, torch.tensor([[False]]), 2.0).item() == 0.0  # unsupervised: ignored
