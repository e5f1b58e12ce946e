"""Routing math (spec §2) against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from biollm_core.routing import (
    adjusted_router_logits,
    expert_capacity,
    routing_regulariser,
    top_k_routing,
    usage_entropy,
)


def test_top_k_weights_are_renormalised_for_k_above_one() -> None:
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.1], [0.4, 0.2, 0.2, 0.2]])
    weights, indices = top_k_routing(probs, 2)
    assert indices[0].tolist() == [1, 2]
    assert indices[1, 0].item() == 0
    # row 0: 0.5 / 0.8 and 0.3 / 0.8
    torch.testing.assert_close(weights[0], torch.tensor([0.625, 0.375]))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))


def test_top_one_keeps_the_raw_probability_and_its_gradient() -> None:
    logits = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    probs = logits.softmax(-1)
    weights, indices = top_k_routing(probs, 1)
    assert indices.tolist() == [[1]]
    expected = math.e / (math.e + 2)  # softmax of [0, 1, 0] at index 1
    assert weights.item() == pytest.approx(expected)
    weights.sum().backward()
    assert logits.grad.abs().sum() > 0  # a renormalised weight (constant 1) would give no gradient


def test_expert_capacity_hand_value() -> None:
    counts = torch.tensor([10.0, 5.0, 0.0])
    drift = torch.tensor([0.0, 2.0, 4.0])
    # (count / 10 + drift / 4) / 2 = [(1 + 0)/2, (0.5 + 0.5)/2, (0 + 1)/2]
    torch.testing.assert_close(expert_capacity(counts, drift), torch.tensor([0.5, 0.5, 0.5]))
    counts = torch.tensor([4.0, 1.0])
    drift = torch.tensor([1.0, 3.0])
    torch.testing.assert_close(expert_capacity(counts, drift), torch.tensor([(1 + 1 / 3) / 2, (0.25 + 1) / 2]))


def test_expert_capacity_is_zero_before_any_use() -> None:
    assert expert_capacity(torch.zeros(4), torch.zeros(4)).tolist() == [0.0] * 4


def test_adjustments_move_the_choice_away_from_a_busy_expert() -> None:
    raw = torch.tensor([[1.0, 0.0, 0.0, 0.0]])  # the raw router prefers expert 0
    fresh = adjusted_router_logits(raw, torch.zeros(4), torch.zeros(4), 1.0, 1.0)
    assert fresh.argmax(-1).item() == 0
    usage = torch.tensor([1.0, 0.0, 0.0, 0.0])  # every activation so far went to expert 0
    capacity = expert_capacity(torch.tensor([100.0, 0, 0, 0]), torch.zeros(4))  # [0.5, 0, 0, 0]
    adjusted = adjusted_router_logits(raw, usage, capacity, 1.0, 1.0)
    # expert 0: 1 + 1 * (1 - 1) - 1 * 0.5 = 0.5; others: 0 + 1 * (1 - 0) - 0 = 1
    torch.testing.assert_close(adjusted, torch.tensor([[0.5, 1.0, 1.0, 1.0]]))
    assert adjusted.argmax(-1).item() != 0


def test_routing_regulariser_zero_when_balanced_and_hand_value_otherwise() -> None:
    assert routing_regulariser(torch.full((5, 4), 0.25)).item() == pytest.approx(0.0, abs=1e-12)
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # mean p = [1, 0]; (1 - 0.5)^2 and (0 - 0.5)^2 -> mean 0.25
    assert routing_regulariser(probs).item() == pytest.approx(0.25)
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3]])
    # mean p = [0.5, 0.3, 0.2]; deviations from 1/3: 1/6, -1/30, -2/15 -> squares mean
    expected = ((1 / 6) ** 2 + (1 / 30) ** 2 + (2 / 15) ** 2) / 3
    assert routing_regulariser(probs).item() == pytest.approx(expected, rel=1e-5)


def test_usage_entropy_bounds() -> None:
    assert usage_entropy(torch.tensor([3.0, 3.0, 3.0, 3.0])).item() == pytest.approx(1.0)
    assert usage_entropy(torch.tensor([5.0, 0.0, 0.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)
    # two of four used equally: ln 2 / ln 4 = 0.5
    assert usage_entropy(torch.tensor([2.0, 2.0, 0.0, 0.0])).item() == pytest.approx(0.5)
