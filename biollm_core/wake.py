"""The wake step (spec §3): train the hippocampus through the frozen neocortex, store episodes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from biollm_core.device import Precision
from biollm_core.hippocampus import Hippocampus
from biollm_core.protocols import Batch, Neocortex
from biollm_core.replay_buffer import ReplayBuffer, ReplaySample
from biollm_core.routing import routing_regulariser


@dataclass
class WakeResult:
    """Device tensors; nothing here forces a host sync."""

    task_loss: torch.Tensor  # scalar: cross-entropy of the combined logits
    accuracy: torch.Tensor  # scalar: token accuracy of the combined logits
    novelty: torch.Tensor  # scalar: fraction of this step's experts never used before


def token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits, (B, T) labels -> accuracy over supervised tokens (labels != -100)."""
    mask = labels != -100
    correct = (logits.argmax(-1) == labels) & mask
    return correct.sum() / mask.sum().clamp_min(1)


def reward_scale(accuracy: torch.Tensor, reward_alpha: float) -> torch.Tensor:
    """``clip(1 + alpha * (2 * accuracy - 1), 0.25, 2.0)``."""
    return (1.0 + reward_alpha * (2.0 * accuracy - 1.0)).clamp(0.25, 2.0)


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
    precision: Precision, cache: ReplayBuffer | None,
) -> torch.Tensor:
    """(B + R, T, H) hidden states of the batch and the replayed episodes -> (B + R,) their ``gate_targets``.

    With ``cache`` (a buffer that keeps them, the neocortex frozen since the last sleep) a replayed
    episode's target is a function of its input: those cached are reused and only the batch and the
    stale episodes are decoded, and the new values are cached. The same targets as decoding all of
    them; one host sync (how many are stale).
    """
    B = labels.shape[0]
    all_labels = labels if harm is None else torch.cat([labels, harm.labels])
    if harm is None or cache is None:
        with precision.autocast():
            return gate_targets(neocortex.decode(hidden, mask), all_labels)
    stale = harm.base_targets.isnan()  # (R,)
    rows = torch.cat([torch.arange(B, device=hidden.device), B + stale.nonzero().squeeze(1)])  # the host sync
    with precision.autocast():
        fresh = gate_targets(neocortex.decode(hidden[rows], None if mask is None else mask[rows]), all_labels[rows])
    cache.write_base_targets(harm.slots[stale], fresh[B:])
    return torch.cat([fresh.new_zeros(B), harm.base_targets.to(fresh.dtype)]).index_copy(0, rows, fresh)


def wake_step(
    neocortex: Neocortex,
    hippocampus: Hippocampus | None,
    optimizer: torch.optim.Optimizer | None,
    scaler: torch.amp.GradScaler,
    replay: ReplayBuffer | None,
    batch: Batch,
    step: int,
    precision: Precision,
    *,
    reward_alpha: float,
    reward_from_correctness: bool,
    routing_reg_weight: float,
    base_optimizer: torch.optim.Optimizer | None = None,
    harm_batch_size: int = 0,
    harm_weight: float = 0.0,
    teacher_after_step: bool = True,
    gate_weight: float = 0.0,
    gate_on_batch: bool = True,
) -> WakeResult:
    """One wake step. ``hippocampus=None`` is the no-hippocampus ablation: nothing fast is trained.
    ``replay=None`` (the nosleep method) stores no episode, so no teacher is decoded after the step.

    ``base_optimizer`` (consolidation.wake_base_lr_scale > 0) also trains the neocortex while awake; by
    default it is None and the neocortex is frozen, so no graph is built below the injection point.

    Do no harm (``harm_batch_size`` > 0): ``harm_batch_size`` episodes replayed from the buffer ride along
    in the same forward pass, and ``harm_weight`` times the combined model's cross-entropy on their
    labels joins the fast loss, so the hippocampus (and its gate) learn to leave alone what the
    neocortex already answers. ``teacher_after_step=False`` stores the step's own combined logits as the
    teacher instead of decoding the batch again after the update (one decode pass less).

    Gate supervision (``gate_weight`` > 0, with experts.gate): the neocortex alone decodes the batch and
    the replayed episodes (no graph), and the gate learns by BCE to open on a sequence in proportion to
    the share of its tokens the neocortex gets wrong (``gate_targets``), so at answer time the delta is
    closed on what the neocortex already knows. A buffer that ``caches_base_targets`` keeps those
    targets per episode between sleeps (``neocortex_gate_targets``): only the batch is decoded for them.
    ``gate_on_batch=False`` leaves the batch out of the BCE (no neocortex-only decode at all with a warm
    cache): its episodes teach the gate when they are replayed.
    """
    x, labels, mask = batch.input_ids, batch.labels, batch.attention_mask
    if hippocampus is None:
        with torch.no_grad(), precision.autocast():
            logits = neocortex.decode(neocortex.encode(x, mask), mask)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        experts = torch.full((x.shape[0], replay.tensors["experts"].shape[1]), -1, dtype=torch.long, device=x.device)
        replay.add(input_ids=x, labels=labels, attention_mask=mask, teacher_logits=logits, task_id=batch.task_id, step=step,
                   experts=experts)
        return WakeResult(loss, token_accuracy(logits, labels), torch.zeros((), device=x.device))

    B = x.shape[0]
    harm = replay.sample(harm_batch_size) if replay is not None and harm_batch_size and len(replay) else None
    inputs, input_mask = x, mask
    if harm is not None:  # (B + R, T): one pass for the batch and the replayed episodes
        inputs = torch.cat([x, harm.input_ids])
        input_mask = None if mask is None else torch.cat([mask.bool(), harm.attention_mask])
    with torch.set_grad_enabled(base_optimizer is not None), precision.autocast():
        hidden = neocortex.encode(inputs, input_mask)  # (B + R, T, H)
    with precision.autocast():
        routed = hippocampus(hidden, input_mask)
        # The gradient flows through the upper neocortex into the delta; only the hippocampus is updated.
        logits = neocortex.decode(hidden + routed.delta, input_mask)  # (B + R, T, V)
    units = routed.probs.shape[0] // inputs.shape[0] * B  # routing units of the stream's batch
    task_loss = F.cross_entropy(logits[:B].float().flatten(0, 1), labels.flatten(), ignore_index=-100)
    accuracy = token_accuracy(logits[:B].detach(), labels)
    loss = task_loss * reward_scale(accuracy, reward_alpha) if reward_from_correctness else task_loss
    loss = loss + routing_reg_weight * routing_regulariser(routed.probs[:units].float())
    if harm is not None:
        loss = loss + harm_weight * F.cross_entropy(logits[B:].float().flatten(0, 1), harm.labels.flatten(), ignore_index=-100)
    targets = None
    if gate_weight > 0 and routed.gate_logits is not None and (gate_on_batch or harm is not None):
        cache = replay if replay is not None and replay.caches_base_targets and base_optimizer is None else None
        first = 0 if gate_on_batch else B  # without the batch: the replayed episodes only (its own come when replayed)
        rows_mask = None if input_mask is None else input_mask[first:]
        targets = neocortex_gate_targets(neocortex, hidden[first:].detach(), rows_mask, labels[:B - first], harm, precision, cache)
        loss = loss + gate_weight * gate_loss(routed.gate_logits[first:], targets, rows_mask)
    optimizer.zero_grad(set_to_none=True)
    if base_optimizer is not None:
        base_optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    if base_optimizer is not None:
        scaler.step(base_optimizer)
        hidden = hidden.detach()
    scaler.update()
    novelty = hippocampus.record_routing(routed.indices[:units])
    if replay is None:
        return WakeResult(task_loss.detach(), accuracy, novelty)
    if teacher_after_step:
        with torch.no_grad(), precision.autocast():
            # The teacher is the combined model *after* the step. A frozen neocortex is unchanged: reuse hidden.
            current = neocortex.encode(x, mask) if base_optimizer is not None else hidden[:B]
            teacher = neocortex.decode(current + hippocampus(current, mask).delta, mask)
    else:
        teacher = logits[:B].detach()
    replay.add(
        input_ids=x, labels=labels, attention_mask=mask, teacher_logits=teacher, task_id=batch.task_id, step=step,
        experts=routed.episode_experts[:B],
        base_targets=None if targets is None or base_optimizer is not None or not gate_on_batch else targets[:B],
    )
    return WakeResult(task_loss.detach(), accuracy, novelty)
