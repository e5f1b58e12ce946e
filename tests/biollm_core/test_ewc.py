"""EWC with an online diagonal Fisher (spec §5.3) against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from biollm_core.ewc import add_ewc_gradient, ewc_penalty, fisher_scale, update_fisher


def test_penalty_is_zero_at_the_anchor() -> None:
    theta = [torch.tensor([0.3, -1.2]), torch.tensor([[2.0]])]
    fisher = [torch.tensor([1.0, 3.0]), torch.tensor([[5.0]])]
    assert ewc_penalty(theta, [t.clone() for t in theta], fisher, 2.0).item() == 0.0


def test_penalty_hand_value_and_growth_with_drift() -> None:
    anchor = [torch.tensor([1.0, 2.0])]
    fisher = [torch.tensor([1.0, 3.0])]
    theta = [torch.tensor([1.5, 1.0])]  # theta - theta* = [0.5, -1]
    # lambda 2: 2 * (1 * 0.25 + 3 * 1) = 6.5
    assert ewc_penalty(theta, anchor, fisher, 2.0).item() == pytest.approx(6.5)
    # normalised: mean F = 2, scale 1/2 -> 3.25
    scale = fisher_scale(fisher, normalize=True)
    assert scale.item() == pytest.approx(0.5)
    assert ewc_penalty(theta, anchor, fisher, 2.0, scale).item() == pytest.approx(3.25)
    # twice the drift costs four times as much
    far = [torch.tensor([2.0, 0.0])]
    assert ewc_penalty(far, anchor, fisher, 2.0).item() == pytest.approx(4 * 6.5)


def test_fisher_scale() -> None:
    fisher = [torch.tensor([1.0, 3.0]), torch.tensor([[2.0, 6.0]])]  # mean over all 4 entries = 3
    assert fisher_scale(fisher, normalize=True).item() == pytest.approx(1 / 3)
    assert fisher_scale(fisher, normalize=False).item() == 1.0
    assert fisher_scale([torch.zeros(3), torch.zeros(2, 2)], normalize=True).item() == 0.0


def test_analytic_gradient_equals_autograd_of_the_penalty() -> None:
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    anchors = [torch.randn(s, generator=gen) for s in shapes]
    fisher = [torch.rand(s, generator=gen) for s in shapes]
    scale = fisher_scale(fisher, normalize=True)
    ewc_penalty(params, anchors, fisher, 3.0, scale).backward()
    expected = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    add_ewc_gradient(params, anchors, fisher, 3.0, scale)
    for p, g in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_analytic_gradient_adds_to_an_existing_gradient() -> None:
    p = torch.nn.Parameter(torch.tensor([1.5, 1.0]))
    p.grad = torch.tensor([0.1, 0.2])
    add_ewc_gradient([p], [torch.tensor([1.0, 2.0])], [torch.tensor([1.0, 3.0])], 2.0, torch.tensor(0.5))
    # 2 * lambda * scale * F * (theta - theta*) = 2 * 2 * 0.5 * [1 * 0.5, 3 * -1] = [1, -6]
    torch.testing.assert_close(p.grad, torch.tensor([1.1, -5.8]))


def test_update_fisher_hand_value() -> None:
    fisher = [torch.tensor([1.0, 2.0])]
    update_fisher(fisher, [torch.tensor([2.0, 1.0])], decay=0.9)
    # 0.9 * [1, 2] + 0.1 * [4, 1] = [1.3, 1.9]
    torch.testing.assert_close(fisher[0], torch.tensor([1.3, 1.9]))
