"""The MLP classifier neocortex (``model.provider=mlp``), split at an injection point (spec §1).

Hidden layers ``Linear -> activation (-> dropout)``, then a linear head. ``encode`` runs the first
``injection_layer`` hidden layers on a (B, D) float feature vector and returns the (B, 1, H) hidden
state the hippocampus adds its delta to (one position: the example); ``decode`` runs the remaining
hidden layers and the head. The head has ``num_heads * num_classes`` outputs, returned as (B, heads,
classes): one head is the usual single-head classifier (domain- and class-incremental learning);
task-incremental learning gives every task its own head (Hsu et al. 2018's multi-head MLP), and an
example's labels supervise only its own task's head, so the heads never compete in the loss or in
the accuracy. Weights keep torch's default Linear initialisation, as in Hsu et al.'s MLP.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def hidden_stack(widths: list[int], activation: str, dropout: float) -> nn.Sequential:
    """``Linear(widths[i], widths[i+1]) -> activation (-> dropout)`` for each consecutive pair."""
    layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(width_in, width_out), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class MLPClassifier(nn.Module):
    """Implements the ``Neocortex`` protocol for float feature inputs."""

    def __init__(
        self,
        *,
        input_dim: int,
        hidden_sizes: list[int],
        activation: str,
        num_classes: int,
        num_heads: int,
        injection_layer: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 <= injection_layer <= len(hidden_sizes):
            raise ValueError(f"injection_layer {injection_layer} must be in 0..{len(hidden_sizes)} (the hidden layers)")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
        widths = [input_dim, *hidden_sizes]
        self.input_dim, self.num_heads = input_dim, num_heads
        self.vocab_size = num_classes  # logits per head
        self.hidden_size = widths[injection_layer]  # H at the injection point
        self.below = hidden_stack(widths[: injection_layer + 1], activation, dropout)
        self.above = hidden_stack(widths[injection_layer:], activation, dropout)
        self.head = nn.Linear(widths[-1], num_heads * num_classes)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D) float features -> (B, 1, H). ``attention_mask`` is unused (feature vectors have no padding)."""
        if not input_ids.is_floating_point() or input_ids.dim() != 2 or input_ids.shape[1] != self.input_dim:
            raise ValueError(
                f"the MLP neocortex takes float features of shape (B, {self.input_dim}); got {tuple(input_ids.shape)} "
                f"{input_ids.dtype} (token benchmarks need model.provider=tiny or hf)"
            )
        return self.below(input_ids).unsqueeze(1)

    def decode(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, H) -> (B, heads, classes) logits."""
        logits = self.head(self.above(hidden.squeeze(1)))  # (B, heads * classes)
        return logits.view(hidden.shape[0], self.num_heads, self.vocab_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(input_ids))

    def consolidation_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.named_parameters())
