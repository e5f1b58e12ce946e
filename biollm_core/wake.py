"""The wake step (spec §3): train the hippocampus through the frozen neocortex, store episodes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from biollm_core.device import Precision
from biollm_core.hippocampus import Hippocampus
from biollm_core.protocols import Batch, Neocortex
from biollm_core.replay_buffer import ReplayBuffer
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
    )
    return WakeResult(task_loss.detach(), accuracy, novelty)
