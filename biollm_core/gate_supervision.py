"""The gate's supervision (issue 11's wake path): the gate on the hippocampus's delta learns by BCE to
open on a sequence in proportion to the share of its tokens the neocortex alone gets wrong.

The targets come from a neocortex-only pass (no graph). While the neocortex is frozen awake (no base
optimizer) it changes only in sleep, so a replayed episode's target is a function of its input: a
buffer that ``caches_base_targets`` keeps them per episode, every sleep invalidates them, and only the
batch and the stale episodes are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from biollm_core.device import Precision
from biollm_core.distributed import Distributed
from biollm_core.hippocampus import RoutingOutput
from biollm_core.protocols import Neocortex
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_sample import ReplaySample


def gate_targets(base_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N, T, V) neocortex logits, (N, T) labels -> (N,) the fraction of each sequence's supervised tokens
    the neocortex gets wrong: where the delta is wanted (1) and where it can only do harm (0)."""
    mask = labels != -100
    wrong = (base_logits.argmax(-1) != labels) & mask
    return wrong.sum(1) / mask.sum(1).clamp_min(1)


def gate_loss(gate_logits: torch.Tensor, targets: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """BCE of every real token's gate logit (N, T, 1) against its sequence's target (N,)."""
    logits = gate_logits.squeeze(-1).float()
    per_token = F.binary_cross_entropy_with_logits(logits, targets.unsqueeze(1).expand_as(logits), reduction="none")
    if attention_mask is None:
        return per_token.mean()
    m = attention_mask.to(per_token.dtype)
    return (per_token * m).sum() / m.sum().clamp_min(1.0)


@torch.no_grad()
def neocortex_gate_targets(
    neocortex: Neocortex, hidden: torch.Tensor, mask: torch.Tensor | None, labels: torch.Tensor, harm: ReplaySample | None,
    precision: Precision, cached: bool,
) -> torch.Tensor:
    """(B + R, T, H) hidden states of the batch and the replayed episodes -> (B + R,) their ``gate_targets``.

    ``cached`` (a buffer that keeps them, the neocortex frozen since the last sleep): a replayed
    episode's target is a function of its input, so those cached (``harm.base_targets``) are reused
    and only the batch and the stale episodes are decoded. The same targets as decoding all of them;
    one host sync (how many are stale). The wake step caches the new values (``ReplayBuffer.write_base_targets``).
    """
    B = labels.shape[0]
    all_labels = labels if harm is None else torch.cat([labels, harm.labels])
    if harm is None or not cached:
        with precision.autocast():
            return gate_targets(neocortex.decode(hidden, mask), all_labels)
    stale = harm.base_targets.isnan()  # (R,)
    rows = torch.cat([torch.arange(B, device=hidden.device), B + stale.nonzero().squeeze(1)])  # the host sync
    with precision.autocast():
        fresh = gate_targets(neocortex.decode(hidden[rows], None if mask is None else mask[rows]), all_labels[rows])
    return torch.cat([fresh.new_zeros(B), harm.base_targets.to(fresh.dtype)]).index_copy(0, rows, fresh)


@dataclass
class GateSupervision:
    """The gate's BCE term and the neocortex-only targets the replay buffer caches."""

    term: torch.Tensor  # scalar: this rank's share of the BCE over the global batch's and the replayed rows
    cache: ReplayBuffer | None  # the buffer that keeps the targets between sleeps (None: nothing cached)
    batch_targets: torch.Tensor | None  # (B,) this rank's batch rows' targets, when cached
    harm_targets: torch.Tensor | None  # (R,) this rank's replayed rows' targets, when cached


def gate_supervision(
    neocortex: Neocortex, replay: ReplayBuffer | None, routed: RoutingOutput, hidden: torch.Tensor, input_mask: torch.Tensor | None,
    labels: torch.Tensor, harm: ReplaySample | None, precision: Precision, *, gate_weight: float, gate_on_batch: bool,
    harm_batch_size: int, base_frozen: bool, distributed: Distributed,
) -> GateSupervision | None:
    """The gate's BCE towards ``gate_targets`` on the batch (``gate_on_batch``) and the replayed rows of a
    (B + R)-row pass; None without a gate, its weight, or rows to teach it on. The targets are cached
    (and returned for the buffer to keep) only where ``replay`` caches them and ``base_frozen``."""
    if gate_weight <= 0 or routed.gate_logits is None or not (gate_on_batch or harm is not None):
        return None
    B, dp = labels.shape[0], distributed
    cache = replay if replay is not None and replay.caches_base_targets and base_frozen else None
    first = 0 if gate_on_batch else B  # without the batch: the replayed episodes only (its own come when replayed)
    rows_mask = None if input_mask is None else input_mask[first:]
    targets = neocortex_gate_targets(neocortex, hidden[first:].detach(), rows_mask, labels[: B - first], harm, precision,
                                     cached=cache is not None)
    # A mean over this rank's rows, as its part of the mean over the global batch's and replayed rows.
    total = (B * dp.world_size if gate_on_batch else 0) + (0 if harm is None else harm_batch_size)
    term = gate_weight * dp.share(gate_loss(routed.gate_logits[first:], targets, rows_mask), hidden.shape[0] - first, total)
    return GateSupervision(
        term=term, cache=cache,
        batch_targets=None if cache is None or not gate_on_batch else targets[:B],
        harm_targets=None if cache is None or harm is None else targets[B - first :],
    )
