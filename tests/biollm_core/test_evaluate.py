"""Held-out evaluation of the base and combined models in one pass."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from biollm_core.device import Precision
from biollm_core.evaluate import evaluate_tasks
from biollm_core.hippocampus import Hippocampus
from biollm_core.models.tiny_transformer import TinyTransformer
from biollm_core.protocols import Batch

V, T, H = 16, 5, 16
CPU = Precision(device=torch.device("cpu"))


def parts() -> tuple[TinyTransformer, Hippocampus, list[Batch]]:
    torch.manual_seed(0)
    model = TinyTransformer(vocab_size=V, input_vocab_size=V, hidden_size=H, num_layers=2, num_heads=2, mlp_ratio=2,
                            max_seq_len=T, injection_layer=1).eval()
    hip = Hippocampus(hidden_size=H, num_experts=3, expert_hidden=8, top_k=2, routing="sequence", init_scale=1.0,
                      utilization_bonus=0.1, capacity_penalty=0.1, seed=0)
    gen = torch.Generator().manual_seed(1)
    sets = []
    for task in range(2):
        ids = torch.randint(0, V, (7, T), generator=gen)
        labels = torch.randint(0, V, (7, T), generator=gen)
        labels[:, :2] = -100
        sets.append(Batch(ids, labels, task))
    return model, hip, sets


def by_hand(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    mask = labels != -100
    accuracy = ((logits.argmax(-1) == labels) & mask).sum() / mask.sum()
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    return accuracy.item(), loss.item()


@pytest.mark.parametrize("batch_size", [3, 100])
def test_scores_match_a_direct_computation(batch_size: int) -> None:
    model, hip, sets = parts()
    scores = evaluate_tasks(model, hip, sets, batch_size, CPU)
    for i, heldout in enumerate(sets):
        with torch.no_grad():
            hidden = model.encode(heldout.input_ids)
            base = model.decode(hidden)
            combined = model.decode(hidden + hip(hidden).delta)
        base_acc, base_loss = by_hand(base, heldout.labels)
        comb_acc, comb_loss = by_hand(combined, heldout.labels)
        assert scores.base_accuracy[i] == pytest.approx(base_acc)
        assert scores.base_loss[i] == pytest.approx(base_loss, rel=1e-5)
        assert scores.combined_accuracy[i] == pytest.approx(comb_acc)
        assert scores.combined_loss[i] == pytest.approx(comb_loss, rel=1e-5)
    assert scores.combined_loss != scores.base_loss  # the hippocampus (init_scale 1) changes the output


def test_without_hippocampus_combined_is_base() -> None:
    model, _, sets = parts()
    scores = evaluate_tasks(model, None, sets, 4, CPU)
    assert scores.combined_accuracy == scores.base_accuracy
    assert scores.combined_loss == scores.base_loss
