"""The MLP classifier neocortex: shapes at the injection point, heads, and what it refuses."""

from __future__ import annotations

import pytest
import torch

from biollm_core.hippocampus import Hippocampus
from biollm_core.models.mlp import MLPClassifier
from biollm_core.protocols import Neocortex


def make(injection_layer: int = 2, heads: int = 1, classes: int = 10) -> MLPClassifier:
    torch.manual_seed(0)
    return MLPClassifier(input_dim=12, hidden_sizes=[16, 8], activation="relu", num_classes=classes, num_heads=heads,
                         injection_layer=injection_layer)


@pytest.mark.parametrize(("injection_layer", "width"), [(0, 12), (1, 16), (2, 8)])
def test_encode_gives_one_position_at_the_injection_point(injection_layer: int, width: int) -> None:
    model = make(injection_layer)
    x = torch.randn(5, 12)
    hidden = model.encode(x)
    assert hidden.shape == (5, 1, width) and model.hidden_size == width
    assert model.decode(hidden).shape == (5, 1, 10)
    assert torch.equal(model.decode(hidden), model(x))  # encode then decode is the whole network


def test_heads_split_the_output_layer_and_share_the_body() -> None:
    model = make(heads=3, classes=2)
    x = torch.randn(4, 12)
    logits = model(x)  # (B, heads, classes)
    assert logits.shape == (4, 3, 2)
    flat = model.head(model.above(model.encode(x).squeeze(1)))  # (B, heads * classes)
    assert torch.equal(logits[:, 1], flat[:, 2:4])  # head h is output units [h*C, (h+1)*C)


def test_it_is_a_neocortex_that_consolidates_every_parameter_and_takes_a_hippocampus() -> None:
    model = make()
    assert isinstance(model, Neocortex)
    assert [name for name, _ in model.consolidation_parameters()] == [name for name, _ in model.named_parameters()]
    hippocampus = Hippocampus(hidden_size=model.hidden_size, num_experts=4, expert_hidden=6, top_k=2, routing="sequence",
                              init_scale=1e-3, utilization_bonus=0.1, capacity_penalty=0.1, seed=0)
    hidden = model.encode(torch.randn(3, 12))
    routed = hippocampus(hidden)
    assert routed.delta.shape == hidden.shape and routed.episode_experts.shape == (3, 2)
    assert model.decode(hidden + routed.delta).shape == (3, 1, 10)


def test_token_ids_and_wrong_widths_are_refused() -> None:
    model = make()
    with pytest.raises(ValueError, match=r"float features of shape \(B, 12\).*model.provider=tiny or hf"):
        model.encode(torch.zeros(2, 12, dtype=torch.long))
    with pytest.raises(ValueError, match=r"got \(2, 5\)"):
        model.encode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="injection_layer 3 must be in 0..2"):
        make(injection_layer=3)
