"""The shared pieces of the label-trained baselines."""

from __future__ import annotations

import math

import pytest
import torch

from biollm_core.methods.supervised import label_loss


def test_label_loss_is_the_mean_over_supervised_tokens() -> None:
    logits = torch.zeros(1, 3, 4)  # uniform over 4 classes: -log(1/4) per token
    logits[0, 1, 2] = 100.0  # a confident right answer costs ~0
    labels = torch.tensor([[1, 2, -100]])
    assert label_loss(logits, labels).item() == pytest.approx(math.log(4) / 2, rel=1e-6)
