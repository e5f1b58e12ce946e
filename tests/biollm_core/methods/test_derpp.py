"""DER++'s logit MSE on stored logits, full and top-k."""

from __future__ import annotations

import pytest
import torch

from biollm_core.methods.derpp import logit_mse
from biollm_core.replay_sample import ReplaySample


def sample(teacher: torch.Tensor, indices: torch.Tensor | None, labels: torch.Tensor) -> ReplaySample:
    return ReplaySample(torch.zeros_like(labels), labels, None, teacher, indices, torch.zeros(labels.shape[0]))


def test_mse_over_supervised_tokens_and_stored_entries() -> None:
    student = torch.tensor([[[1.0, 2.0, 3.0], [9.0, 9.0, 9.0]]])  # (1, 2, 3); the second token is unsupervised
    labels = torch.tensor([[0, -100]])
    full = sample(torch.tensor([[[1.0, 0.0, 3.0], [0.0, 0.0, 0.0]]]), None, labels)
    assert logit_mse(student, full).item() == pytest.approx(4.0 / 3)  # (0 + 4 + 0) / 3 entries
    top = sample(torch.tensor([[[0.0, 2.0], [0.0, 0.0]]]), torch.tensor([[[2, 1], [0, 1]]]), labels)
    assert logit_mse(student, top).item() == pytest.approx(9.0 / 2)  # entries 2 and 1: (3-0)^2, (2-2)^2
