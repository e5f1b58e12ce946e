"""Expert refresh after sleep (spec §6): recycle experts whose knowledge the neocortex has absorbed.

An expert is absorbed when, on its most recent routed episodes in the buffer (the latest by step), the
neocortex alone predicts the episodes' targets: their stored labels (every benchmark here has them).
The stored teacher is no target: a task's first teachers are wrong (5% correct measured at a task's
start), and probing against them pinned experts for ever.

``policy="relative"`` also recycles an expert whose latest episodes the neocortex alone answers as
well as neocortex + hippocampus does (the hippocampus adds nothing there), where a neocortex never
reaches the absolute threshold (instruction tasks: ~0.41 agreement). Measured in README "The CLS
learner": on the instruction streams it is worse than ``all`` on anytime accuracy.
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
    neocortex: Neocortex, replay: ReplayBuffer, index: torch.Tensor, valid: torch.Tensor, distributed: Distributed = SINGLE,
    hippocampus: Hippocampus | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``expert_agreement`` of the neocortex alone on the probe episodes at slots ``index`` (E, P): the
    agreement (E,), whether each expert was tested (E,) and, with ``hippocampus``, the combined model's
    agreement on the same probes (E,). Data parallel: each rank scores the probes it holds and the
    per-probe counts are summed, so every rank gets the same figures; one process holds them all."""
    flat = index.flatten()
    held = replay.held(flat)
    sample = replay.gather(flat[held])
    counts = torch.zeros(2 if hippocampus is None else 3, flat.numel(), device=flat.device)  # agree, total[, combined agree]
    if len(sample):
        mask = sample.attention_mask
        hidden = neocortex.encode(sample.input_ids, mask)
        counts[:2, held] = torch.stack(probe_counts(neocortex.decode(hidden, mask).argmax(-1), sample.labels)).float()
        if hippocampus is not None:
            combined = neocortex.decode(hidden + hippocampus(hidden, mask).delta, mask)
            counts[2, held] = probe_counts(combined.argmax(-1), sample.labels)[0].float()
    counts = distributed.all_reduce_sum(counts).view(-1, *index.shape)
    agreement, tested = expert_agreement(counts[:2], valid)
    return agreement, tested, None if hippocampus is None else expert_agreement(counts[[2, 1]], valid)[0]


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
        relative = policy == "relative"
        agreement, tested, combined = probe_agreement(neocortex, replay, index, valid, distributed,
                                                      hippocampus if relative else None)
        absorbed = agreement >= agreement_threshold
        if relative:  # or where the hippocampus adds nothing on the expert's episodes
            absorbed |= agreement >= combined
        chosen = tested & absorbed
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
