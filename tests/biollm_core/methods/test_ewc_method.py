"""Online EWC's empirical Fisher, checked against the closed form of a linear softmax model."""

from __future__ import annotations

import torch
from torch import nn

from biollm_core.device import Precision
from biollm_core.methods.ewc import empirical_fisher
from biollm_core.methods.supervised import NeocortexLearner
from biollm_core.protocols import Batch


class LinearNeocortex(nn.Module):
    """A one-matrix neocortex: logits = one_hot(x) @ W (the protocol's encode/decode split trivially)."""

    hidden_size, vocab_size = 3, 4

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)))

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return nn.functional.one_hot(input_ids, 3).float()

    def decode(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return hidden @ self.weight

    def consolidation_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.named_parameters())


def test_empirical_fisher_is_the_mean_squared_per_example_gradient() -> None:
    model = LinearNeocortex()
    learner = NeocortexLearner(model, lr=1e-3, weight_decay=0.0, precision=Precision(torch.device("cpu")))
    ids, labels = torch.tensor([[0], [2]]), torch.tensor([[1], [3]])
    (fisher,) = empirical_fisher(learner, [Batch(ids, labels, 0)])
    # d CE / d W for one token: outer(one_hot(x), softmax(W[x]) - one_hot(y)); squared, averaged over the 2 examples
    expected = torch.zeros(3, 4)
    for x, y in ((0, 1), (2, 3)):
        g = torch.zeros(3, 4)
        g[x] = model.weight[x].detach().softmax(-1) - nn.functional.one_hot(torch.tensor(y), 4).float()
        expected += g.pow(2) / 2
    torch.testing.assert_close(fisher, expected)
