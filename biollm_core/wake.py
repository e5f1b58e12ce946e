"""The wake step (spec §3): train the hippocampus through the frozen neocortex, store episodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from biollm_core.device import Precision
from biollm_core.distributed import SINGLE, Distributed
from biollm_core.gate_supervision import GateSupervision, gate_supervision
from biollm_core.hippocampus import Hippocampus
from biollm_core.protocols import Batch, Neocortex
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.routing import routing_regulariser, routing_regulariser_of_mean


@dataclass
class WakeResult:
    """Device tensors; nothing here forces a host sync."""

    task_loss: torch.Tensor  # scalar: cross-entropy of the combined logits
    accuracy: torch.Tensor  # scalar: token accuracy of the combined logits
    novelty: torch.Tensor  # scalar: fraction of this step's experts never used before
    replayed: int = 0  # replayed (do-no-harm) episodes through this rank's forward pass


def token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits, (B, T) labels -> accuracy over supervised tokens (labels != -100)."""
    mask = labels != -100
    correct = (logits.argmax(-1) == labels) & mask
    return correct.sum() / mask.sum().clamp_min(1)


def batch_figures(
    distributed: Distributed, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, token accuracy) on the global batch from this rank's shard (its mean ``loss`` over its tokens)."""
    accuracy = token_accuracy(logits, labels)
    if not distributed.parallel:
        return loss, accuracy
    tokens = (labels != -100).sum().double()
    total = distributed.all_reduce_sum(torch.stack([loss.detach().double() * tokens, accuracy.double() * tokens, tokens]))
    return (total[0] / total[2].clamp_min(1)).float(), (total[1] / total[2].clamp_min(1)).float()


def optimizer_params(*optimizers: torch.optim.Optimizer | None) -> list[torch.nn.Parameter]:
    """Every parameter the optimizers step (the gradients data parallelism must sum)."""
    return [p for opt in optimizers if opt is not None for group in opt.param_groups for p in group["params"]]


@dataclass
class GlobalStats:
    """The wake step's batch statistics over every rank's shard (what one process would have seen)."""

    task_loss: torch.Tensor  # scalar: cross-entropy over the global batch's supervised tokens
    accuracy: torch.Tensor  # scalar
    mean_probs: torch.Tensor  # (E,) mean routing probabilities, carrying this rank's gradient
    used: torch.Tensor  # (E,) activations per expert
    episode_experts: torch.Tensor  # (W * b, k) every episode's experts, in global row order
    trained: torch.Tensor  # (G,) the experts any unit on any rank was routed to (replayed ones too): those with gradients


def start_global_stats(distributed: Distributed, task_loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
                       probs: torch.Tensor, indices: torch.Tensor, episode_experts: torch.Tensor,
                       all_indices: torch.Tensor) -> Callable[[], GlobalStats]:
    """The wake step's ``GlobalStats`` from one all-gather of this rank's sums (tokens, correct, loss,
    routing probabilities and choices), started here: work that does not read them can run before the
    returned function is called, which waits for the gather and builds them.

    The routing regulariser is a function of the *global* mean probability: this rank's probabilities
    keep their graph and the other ranks' sum enters as a constant, so the gradients summed over ranks
    are the regulariser's gradient on the whole batch."""
    E = probs.shape[-1]
    mask = labels != -100
    tokens = mask.sum()
    correct = ((logits.argmax(-1) == labels) & mask).sum()
    used = torch.bincount(indices.flatten(), minlength=E)
    routed = torch.bincount(all_indices.flatten(), minlength=E)  # the stream's units and the replayed ones
    head = torch.stack([tokens.float(), correct.float(), task_loss.detach().float() * tokens, torch.tensor(float(probs.shape[0]),
                        device=probs.device)])
    local = torch.cat([head, probs.detach().float().sum(0), used.float(), routed.float(),
                       episode_experts.flatten().float()]).double()
    gathered = distributed.start_all_gather(local)  # (W, 4 + 3E + b*k)

    def finish() -> GlobalStats:
        every = gathered()
        total = every.sum(0)
        others = (total[4 : 4 + E] - local[4 : 4 + E]).float()
        mean_probs = (probs.float().sum(0) + others) / total[3].float()
        return GlobalStats(
            task_loss=(total[2] / total[0].clamp_min(1)).float(), accuracy=(total[1] / total[0].clamp_min(1)).float(),
            mean_probs=mean_probs, used=total[4 + E : 4 + 2 * E].round().long(),
            episode_experts=every[:, 4 + 3 * E :].round().long().reshape(-1, episode_experts.shape[-1]),
            trained=(total[4 + 2 * E : 4 + 3 * E] > 0).nonzero().flatten(),
        )

    return finish


def reward_scale(accuracy: torch.Tensor, reward_alpha: float) -> torch.Tensor:
    """``clip(1 + alpha * (2 * accuracy - 1), 0.25, 2.0)``."""
    return (1.0 + reward_alpha * (2.0 * accuracy - 1.0)).clamp(0.25, 2.0)


def spread(distributed: Distributed, values: torch.Tensor, total: int) -> torch.Tensor:
    """(total,) zeros with this rank's ``values`` at its rows ``distributed.rows(total)``: summed over
    ranks (exactly: x + 0 = x), every rank's values in global order."""
    out = values.new_zeros(total)
    out[distributed.rows(total)] = values
    return out


def task_and_routing_loss(
    distributed: Distributed, task_loss: torch.Tensor, accuracy: torch.Tensor, probs: torch.Tensor,
    stats: GlobalStats | None, batch_size: int, *, reward_alpha: float, reward_from_correctness: bool, routing_reg_weight: float,
) -> torch.Tensor:
    """The task loss (scaled by the batch's reward when asked) plus the routing regulariser on this
    rank's (N, E) ``probs``; data parallel (``stats``): this rank's share of the global batch's."""
    if stats is None:
        loss = task_loss * reward_scale(accuracy, reward_alpha) if reward_from_correctness else task_loss
        return loss + routing_reg_weight * routing_regulariser(probs.float())
    scale = reward_scale(stats.accuracy, reward_alpha) if reward_from_correctness else 1.0
    loss = distributed.share(task_loss, batch_size, batch_size * distributed.world_size) * scale
    return loss + routing_reg_weight * routing_regulariser_of_mean(stats.mean_probs)


def backward_and_step(
    loss: torch.Tensor, hippocampus: Hippocampus, optimizer: torch.optim.Optimizer, base_optimizer: torch.optim.Optimizer | None,
    scaler: torch.amp.GradScaler, stats: GlobalStats | None, gate: GateSupervision | None, batch_rows: int, harm_rows: int,
    distributed: Distributed,
) -> GateSupervision | None:
    """Backward, the data-parallel gradient sum, the optimizer steps. Data parallel, the gate's cached
    targets (this rank's rows) ride in the gradients' all-reduce: the returned ``gate`` holds every
    rank's, in global order (``batch_rows`` and ``harm_rows``: the global batch's and the whole replay
    sample's sizes). W = 1: ``gate`` as passed."""
    dp = distributed
    optimizer.zero_grad(set_to_none=True)
    if base_optimizer is not None:
        base_optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    # Only the experts the global batch was routed to have gradients: only their rows are summed.
    routed_rows = None if stats is None else dict.fromkeys(hippocampus.expert_parameters(), stats.trained)
    cached = {} if gate is None or not dp.parallel else {
        name: (values, total) for name, values, total in (("batch_targets", gate.batch_targets, batch_rows),
                                                          ("harm_targets", gate.harm_targets, harm_rows)) if values is not None}
    summed = dp.sum_gradients(optimizer_params(optimizer, base_optimizer), [spread(dp, *v) for v in cached.values()],
                              rows=routed_rows)
    scaler.step(optimizer)
    if base_optimizer is not None:
        scaler.step(base_optimizer)
    scaler.update()
    return gate if not cached else replace(gate, **dict(zip(cached, summed, strict=True)))


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
    distributed: Distributed = SINGLE,
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
    the share of its tokens the neocortex gets wrong (``gate_supervision.py``), so at answer time the delta
    is closed on what the neocortex already knows. A buffer that ``caches_base_targets`` keeps those
    targets per episode between sleeps: only the batch and the stale episodes are decoded for them.
    ``gate_on_batch=False`` leaves the batch out of the BCE (no neocortex-only decode at all with a warm
    cache): its episodes teach the gate when they are replayed.
    """
    if hippocampus is None:
        return _wake_without_hippocampus(neocortex, replay, batch, step, precision, distributed)
    x, labels, mask = batch.input_ids, batch.labels, batch.attention_mask
    B, dp = x.shape[0], distributed
    # Data parallel: each rank replays an equal share of the sample's rows (whoever holds them).
    harm = replay.sample_even(harm_batch_size) if replay is not None and harm_batch_size and len(replay) else None
    inputs, input_mask = x, mask
    if harm is not None:  # (B + R, T): one pass for the batch and the replayed episodes (R: this rank's share)
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
    # Data parallel: the batch statistics travel while this rank computes the terms that do not read them.
    pending_stats = start_global_stats(dp, task_loss, logits[:B].detach(), labels, routed.probs[:units], routed.indices[:units],
                                       routed.episode_experts[:B], routed.indices) if dp.parallel else None
    terms = []
    if harm is not None:
        harm_loss = F.cross_entropy(logits[B:].float().flatten(0, 1), harm.labels.flatten(), ignore_index=-100)
        terms.append(harm_weight * dp.share(harm_loss, len(harm), harm_batch_size))
    gate = gate_supervision(neocortex, replay, routed, hidden, input_mask, labels, harm, precision, gate_weight=gate_weight,
                            gate_on_batch=gate_on_batch, harm_batch_size=harm_batch_size,
                            base_frozen=base_optimizer is None, distributed=dp)
    if gate is not None:
        terms.append(gate.term)
    stats = None if pending_stats is None else pending_stats()
    loss = task_and_routing_loss(dp, task_loss, accuracy, routed.probs[:units], stats, B, reward_alpha=reward_alpha,
                                 reward_from_correctness=reward_from_correctness, routing_reg_weight=routing_reg_weight)
    for term in terms:  # the do-no-harm and the gate's terms
        loss = loss + term
    # From here on the gate's cached targets are the global batch's and the whole replay sample's.
    gate = backward_and_step(loss, hippocampus, optimizer, base_optimizer, scaler, stats, gate, B * dp.world_size, harm_batch_size,
                             dp)
    if stats is not None:  # every rank counts every shard's routing: the same router adjustments everywhere
        task_loss, accuracy = stats.task_loss, stats.accuracy
        novelty = hippocampus.record_usage(stats.used)
    else:
        novelty = hippocampus.record_routing(routed.indices[:units])
    if gate is not None and gate.harm_targets is not None:  # (targets only where a buffer caches them)
        gate.cache.write_base_targets(harm.sample_slots, gate.harm_targets)  # the whole draw's: every rank's rows
    replayed = 0 if harm is None else len(harm)
    if replay is not None:
        if teacher_after_step:
            with torch.no_grad(), precision.autocast():
                # The teacher is the combined model *after* the step. A frozen neocortex is unchanged: reuse hidden.
                current = neocortex.encode(x, mask) if base_optimizer is not None else hidden[:B]
                teacher = neocortex.decode(current + hippocampus(current, mask).delta, mask)
        else:
            teacher = logits[:B].detach()
        replay.add(
            input_ids=x, labels=labels, attention_mask=mask, teacher_logits=teacher, task_id=batch.task_id, step=step,
            experts=routed.episode_experts[:B] if stats is None else stats.episode_experts,
            base_targets=None if gate is None else gate.batch_targets,
        )
    return WakeResult(task_loss.detach(), accuracy, novelty, replayed)


def _wake_without_hippocampus(neocortex: Neocortex, replay: ReplayBuffer, batch: Batch, step: int, precision: Precision,
                              distributed: Distributed) -> WakeResult:
    """The no-hippocampus ablation's wake step: the neocortex answers and its episodes are stored."""
    x, labels, mask = batch.input_ids, batch.labels, batch.attention_mask
    with torch.no_grad(), precision.autocast():
        logits = neocortex.decode(neocortex.encode(x, mask), mask)
    loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
    rows = x.shape[0] * distributed.world_size  # every episode of the global batch has (no) experts
    experts = torch.full((rows, replay.tensors["experts"].shape[1]), -1, dtype=torch.long, device=x.device)
    replay.add(input_ids=x, labels=labels, attention_mask=mask, teacher_logits=logits, task_id=batch.task_id, step=step,
               experts=experts)
    loss, accuracy = batch_figures(distributed, loss, logits, labels)
    return WakeResult(loss, accuracy, torch.zeros((), device=x.device))
