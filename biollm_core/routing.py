"""Routing math of the hippocampus (spec §2): pure functions over tensors."""

from __future__ import annotations

import torch


def expert_capacity(counts: torch.Tensor, drift: torch.Tensor) -> torch.Tensor:
    """(E,) activation counts and (E,) parameter drift -> (E,) capacity in [0, 1].

    ``capacity_e = (count_e / max count + drift_e / max drift) / 2``; a term whose maximum is 0 counts 0.
    """
    count_term = counts / counts.max().clamp_min(1e-12)
    drift_term = drift / drift.max().clamp_min(1e-12)
    return 0.5 * (count_term + drift_term)


def adjusted_router_logits(
    logits: torch.Tensor,
    usage_share: torch.Tensor,
    capacity: torch.Tensor,
    utilization_bonus: float,
    capacity_penalty: float,
) -> torch.Tensor:
    """(N, E) router logits -> (N, E): ``+ bonus * (1 - usage_share_e) - penalty * capacity_e``."""
    return logits + utilization_bonus * (1.0 - usage_share) - capacity_penalty * capacity


def top_k_routing(probs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, E) softmax probabilities -> weights (N, k), indices (N, k).

    The chosen probabilities are renormalised to sum to 1. With k = 1 the renormalised weight would be
    the constant 1 and the router would get no gradient, so the raw probability is used (Switch style).
    """
    top_p, top_i = probs.topk(k, dim=-1)
    if k == 1:
        return top_p, top_i
    return top_p / top_p.sum(dim=-1, keepdim=True), top_i


def routing_regulariser(probs: torch.Tensor) -> torch.Tensor:
    """(N, E) probabilities -> scalar ``mean_e (mean_n p_e - 1/E)^2`` (0 when the load is balanced)."""
    return routing_regulariser_of_mean(probs.mean(dim=0))


def routing_regulariser_of_mean(mean_probs: torch.Tensor) -> torch.Tensor:
    """(E,) mean routing probabilities -> scalar ``mean_e (p_e - 1/E)^2``."""
    return (mean_probs - 1.0 / mean_probs.shape[-1]).pow(2).mean()


def usage_entropy(counts: torch.Tensor) -> torch.Tensor:
    """(E,) counts -> entropy of the usage distribution normalised to [0, 1] (1 = uniform use)."""
    total = counts.sum()
    p = counts / total.clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum()
    return entropy / torch.log(torch.tensor(float(max(counts.numel(), 2)), device=counts.device))
