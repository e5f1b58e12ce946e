"""The gate's targets and loss (``biollm_core/gate_supervision.py``); the cached targets inside a wake
step are tested with it (``test_wake.py``)."""

import torch

from biollm_core.gate_supervision import gate_loss, gate_targets


def test_gate_targets_are_the_share_of_tokens_the_neocortex_gets_wrong() -> None:
    labels = torch.tensor([[1, 2, -100, 3], [0, -100, -100, -100], [-100, -100, -100, -100]])
    logits = torch.zeros(3, 4, 5)
    for (i, j), value in {(0, 0): 1, (0, 1): 4, (0, 2): 0, (0, 3): 3, (1, 0): 2}.items():
        logits[i, j, value] = 1.0  # argmax: right, wrong, (unsupervised), right | wrong | nothing supervised
    torch.testing.assert_close(gate_targets(logits, labels), torch.tensor([1 / 3, 1.0, 0.0]))


def test_gate_loss_counts_real_tokens_only() -> None:
    logits = torch.tensor([[[0.0], [5.0]]])  # (1, 2, 1)
    full = gate_loss(logits, torch.tensor([1.0]), None)
    masked = gate_loss(logits, torch.tensor([1.0]), torch.tensor([[1, 0]]))
    torch.testing.assert_close(masked, torch.nn.functional.softplus(torch.tensor(0.0)))  # -log sigmoid(0)
    assert full < masked  # the padded token, gate wide open, would have lowered it
