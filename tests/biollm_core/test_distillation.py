"""The sleep distillation loss (spec §5.2): hand values, zero KL at agreement, top-k and corrupt teachers."""

from __future__ import annotations

import math

import pytest
import torch

from biollm_core.distillation import distillation_loss


def test_one_token_hand_value() -> None:
    student = torch.tensor([[[0.0, 0.0]]])  # p_s = [0.5, 0.5]
    teacher = torch.tensor([[[math.log(3.0), 0.0]]])  # p_t = [0.75, 0.25]
    loss, kl = distillation_loss(student, teacher, torch.tensor([[True]]))
    cross_entropy = math.log(2)  # -(0.75 ln 0.5 + 0.25 ln 0.5) = 0.693147
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))  # 0.562335
    assert kl.item() == pytest.approx(cross_entropy - entropy, rel=1e-5)  # 0.130812
    assert loss.item() == pytest.approx(0.5 * (cross_entropy - entropy) + 0.5 * cross_entropy, rel=1e-5)  # 0.411980


def test_zero_kl_when_student_equals_teacher() -> None:
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    loss, kl = distillation_loss(logits, logits.clone(), torch.ones(2, 3, dtype=torch.bool))
    assert kl.item() == pytest.approx(0.0, abs=1e-6)
    entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1).mean()
    assert loss.item() == pytest.approx(0.5 * entropy.item(), rel=1e-5)  # only the CE half remains: H(teacher)


def test_top_k_teacher_hand_value() -> None:
    student = torch.zeros(1, 1, 4)  # log p_s = ln 0.25 everywhere
    values = torch.tensor([[[math.log(3.0), 0.0]]])  # kept entries, renormalised: [0.75, 0.25]
    indices = torch.tensor([[[2, 0]]])
    loss, kl = distillation_loss(student, values, torch.tensor([[True]]), indices)
    cross_entropy = math.log(4)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert kl.item() == pytest.approx(cross_entropy - entropy, rel=1e-5)  # 0.823959
    assert loss.item() == pytest.approx(0.5 * (cross_entropy - entropy) + 0.5 * cross_entropy, rel=1e-5)


def test_top_k_with_all_entries_equals_the_full_teacher() -> None:
    gen = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 3, 6, generator=gen), torch.randn(2, 3, 6, generator=gen)
    mask = torch.tensor([[True, False, True], [True, True, True]])
    values, indices = teacher.topk(6, dim=-1)
    full = distillation_loss(student, teacher, mask)
    top = distillation_loss(student, values, mask, indices)
    torch.testing.assert_close(top[0], full[0])
    torch.testing.assert_close(top[1], full[1])


def test_only_supervised_tokens_count() -> None:
    gen = torch.Generator().manual_seed(2)
    student, teacher = torch.randn(1, 2, 4, generator=gen), torch.randn(1, 2, 4, generator=gen)
    both = distillation_loss(student, teacher, torch.tensor([[True, False]]))
    first = distillation_loss(student[:, :1], teacher[:, :1], torch.tensor([[True]]))
    torch.testing.assert_close(both[0], first[0])


def test_a_non_finite_teacher_token_is_dropped() -> None:
    gen = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(1, 3, 4, generator=gen), torch.randn(1, 3, 4, generator=gen)
    corrupt = teacher.clone()
    corrupt[0, 1, 2] = float("nan")
    corrupt[0, 2, 0] = float("inf")
    student = student.requires_grad_(True)
    loss, kl = distillation_loss(student, corrupt, torch.ones(1, 3, dtype=torch.bool))
    clean = distillation_loss(student[:, :1], teacher[:, :1], torch.ones(1, 1, dtype=torch.bool))
    torch.testing.assert_close(loss, clean[0])
    torch.testing.assert_close(kl, clean[1])
    loss.backward()
    assert torch.isfinite(student.grad).all()
