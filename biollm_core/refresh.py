"""Expert refresh after sleep (spec §6): recycle experts whose knowledge the neocortex has absorbed.

An expert is absorbed when, on its most recent routed episodes in the buffer (the latest by step), the
neocortex alone predicts the episodes' targets: their stored labels (every benchmark here has them).
The stored teacher is no target: a task's first teachers are wrong (5% correct measured at a task's
start), and probing against them pinned experts for ever.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from biollm_core.distributed import SINGLE, Distributed
from biollm_core.hippocampus import Hippocampus
from biollm_core.protocols import Neocortex
from biollm_core.replay_buffer import ReplayBuffer


@dataclass
class RefreshResult:
    refreshed: int
    mean_agreement: float  # over experts that had probe episodes (nan if none had)


def probe_counts(base_argmax: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T) base argmax and labels of N probe episodes -> agreeing and supervised tokens, (N,) each."""
    supervised = labels != -100
    return ((base_argmax == labels) & supervised).sum(1), supervised.sum(1)


def expert_agreement(counts: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, E, P) agreeing and supervised tokens of each expert's P probes, (E, P) which probes are real
    -> each expert's agreement over its valid probes (E,) and whether it had a supervised token (E,)."""
    agree, total = (counts * valid).sum(-1)
    return agree / total.clamp_min(1), total > 0


@torch.no_grad()
def probe_agreement(
    neocortex: Neocortex, replay: ReplayBuffer, index: torch.Tensor, valid: torch.Tensor, distributed: Distributed = SINGLE
) -> tuple[torch.Tensor, torch.Tensor]:
    """``expert_agreement`` of the neocortex alone on the probe episodes at slots ``index`` (E, P). Data
    parallel: each rank scores the probes it holds and the per-probe counts are summed, so every rank
    gets the same agreement (E,) and tested (E,); one process holds them all."""
    flat = index.flatten()
    held = replay.held(flat)
    sample = replay.gather(flat[held])
    counts = torch.zeros(2, flat.numel(), device=flat.device)
    if len(sample):
        base = neocortex.decode(neocortex.encode(sample.input_ids, sample.attention_mask), sample.attention_mask)
        counts[:, held] = torch.stack(probe_counts(base.argmax(-1), sample.labels)).float()
    return expert_agreement(distributed.all_reduce_sum(counts).view(2, *index.shape), valid)


@torch.no_grad()
def refresh_experts(
    neocortex: Neocortex,
    hippocampus: Hippocampus,
    optimizer: torch.optim.Optimizer,
    replay: ReplayBuffer,
    *,
    policy: str,
    probe_episodes: int,
    agreement_threshold: float,
    reset_factor: float,
    distributed: Distributed = SINGLE,
) -> RefreshResult:
    E = hippocampus.num_experts
    if policy == "off":
        return RefreshResult(0, float("nan"))
    if policy == "all":
        chosen = torch.ones(E, dtype=torch.bool, device=hippocampus.counts.device)
        mean_agreement = float("nan")
    else:
        index, valid = replay.recent_episodes_of(E, probe_episodes)  # (E, P): the same slots on every rank
        agreement, tested = probe_agreement(neocortex, replay, index, valid, distributed)
        chosen = tested & (agreement >= agreement_threshold)
        mean_agreement = float(agreement[tested].mean()) if bool(tested.any()) else float("nan")
    hippocampus.reset_experts(chosen, reset_factor)
    _reset_optimizer_rows(optimizer, hippocampus, chosen, reset_factor)
    return RefreshResult(int(chosen.sum()), mean_agreement)


def _reset_optimizer_rows(optimizer: torch.optim.Optimizer, hippocampus: Hippocampus, chosen: torch.Tensor, reset_factor: float) -> None:
    """Scale the AdamW moments of recycled experts like their weights, so old momentum cannot undo a reset."""
    keep = torch.where(chosen, torch.tensor(reset_factor, device=chosen.device), torch.ones((), device=chosen.device))
    for param in (hippocampus.w1, hippocampus.b1, hippocampus.w2, hippocampus.b2, hippocampus.router.bias):
        state = optimizer.state.get(param)
        if not state:
            continue
        shape = (-1,) + (1,) * (param.dim() - 1)
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key].mul_(keep.view(shape))
