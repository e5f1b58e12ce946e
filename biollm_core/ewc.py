"""Elastic weight consolidation with an online diagonal Fisher (spec §5.3): pure tensor functions.

Scale. Squared batch-mean gradients are tiny (about 1e-7 on the toy model), so lambda has no natural
unit on the raw Fisher. With ``normalize=True`` the Fisher is divided by its mean over all parameters:
a parameter of average importance then costs ``lambda * (theta - theta*)^2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def update_fisher(fisher: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], decay: float) -> None:
    """In place, for every parameter tensor: ``F <- decay * F + (1 - decay) * g^2``."""
    torch._foreach_mul_(list(fisher), decay)
    torch._foreach_addcmul_(list(fisher), list(grads), list(grads), value=1.0 - decay)


def fisher_scale(fisher: Sequence[torch.Tensor], normalize: bool) -> torch.Tensor:
    """The factor applied to F: ``1 / mean(F)`` over all parameters when normalising (0 if F is all 0)."""
    device = fisher[0].device if fisher else torch.device("cpu")
    if not normalize:
        return torch.ones((), device=device)
    # F >= 0, so each tensor's sum is its L1 norm: one foreach call instead of a kernel per tensor.
    total = torch.stack(torch._foreach_norm(list(fisher), 1)).sum()
    count = sum(f.numel() for f in fisher)
    mean = total / count
    return torch.where(mean > 0, 1.0 / mean.clamp_min(1e-30), torch.zeros((), device=device))


def ewc_penalty(
    params: Sequence[torch.Tensor],
    anchors: Sequence[torch.Tensor],
    fisher: Sequence[torch.Tensor],
    lambda_: float,
    scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """``lambda * scale * sum_i F_i (theta_i - theta*_i)^2`` as a scalar tensor."""
    terms = [(f * (p - a).pow(2)).sum() for p, a, f in zip(params, anchors, fisher, strict=True)]
    return lambda_ * scale * torch.stack(terms).sum()


@torch.no_grad()
def add_ewc_gradient(
    params: Sequence[torch.nn.Parameter],
    anchors: Sequence[torch.Tensor],
    fisher: Sequence[torch.Tensor],
    lambda_: float,
    scale: torch.Tensor,
) -> None:
    """Add the penalty's gradient ``2 * lambda * scale * F * (theta - theta*)`` to each ``.grad`` in place.

    Analytic, so the distillation loss needs one backward pass and no retained graph.
    """
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    # foreach: a few fused passes over all tensors instead of four kernels per parameter tensor.
    step = torch._foreach_sub([p.detach() for p in params], list(anchors))  # theta - theta*
    torch._foreach_mul_(step, list(fisher))  # F * (theta - theta*)
    torch._foreach_mul_(step, 2.0 * lambda_ * scale)
    torch._foreach_add_([p.grad for p in params], step)
