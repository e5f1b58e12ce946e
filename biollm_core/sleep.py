"""Sleep (spec §5): shuffled replay consolidated into the neocortex by distillation + online-Fisher EWC."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from biollm_core.device import Precision
from biollm_core.distillation import distillation_loss
from biollm_core.distributed import SINGLE, Distributed
from biollm_core.ewc import add_ewc_gradient, ewc_penalty, fisher_scale, update_fisher
from biollm_core.protocols import Neocortex
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_sample import ReplaySample


class EwcState:
    """The anchor theta* and the online diagonal Fisher for the neocortex's consolidated parameters."""

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]]) -> None:
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.anchors = [p.detach().clone() for p in self.params]
        self.fisher = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def retake_anchor(self) -> None:
        torch._foreach_copy_(self.anchors, [p.detach() for p in self.params])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.anchors + self.fisher)

    def state_dict(self) -> dict:
        return {"anchors": dict(zip(self.names, self.anchors, strict=True)), "fisher": dict(zip(self.names, self.fisher, strict=True))}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for name, a, f in zip(self.names, self.anchors, self.fisher, strict=True):
                a.copy_(state["anchors"][name])
                f.copy_(state["fisher"][name])


@dataclass
class SleepStats:
    steps: int
    updates: int  # steps whose loss was finite and that updated the neocortex
    skipped: int
    distill_kl: float  # mean over the cycle
    ewc_penalty: float  # at the last step
    samples: int = 0  # replayed episodes through this rank's forward passes


@dataclass
class SleepSettings:
    batch_size: int
    temperature: float
    ewc_lambda: float
    fisher_decay: float
    normalize_fisher: bool
    grad_clip: float
    pseudo_ratio: float  # 0 = no pseudo-rehearsal
    pseudo_kind: str
    perturb_prob: float
    label_weight: float = 0.0  # cross-entropy on the episodes' stored labels beside the distillation (DER++'s beta)


def pseudo_samples(
    sample: ReplaySample,
    count: int,
    vocab_size: int,
    kind: str,
    perturb_prob: float,
    combined: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    generator: torch.Generator,
) -> ReplaySample:
    """Replace the sample's first ``count`` episodes by pseudo-samples labelled by the current combined model.

    ``random`` draws fresh tokens at the supervised positions; ``perturb`` replaces each of them with
    probability ``perturb_prob``. Unsupervised positions (task cues, prompts) are kept. Data parallel:
    the noise is drawn for the whole sample's first ``count`` rows on every rank (the same draws as
    one process), and each rank applies the rows it holds.
    """
    ids = sample.input_ids.clone()
    T = ids.shape[1]
    noise = torch.randint(0, vocab_size, (count, T), generator=generator)
    keep = torch.rand((count, T), generator=generator) < perturb_prob if kind == "perturb" else None
    count = sample.leading(count)  # the pseudo rows this rank holds (they lead its rows)
    if sample.positions is not None:
        chosen = sample.positions[:count].cpu()
        noise = noise[chosen]
        keep = None if keep is None else keep[chosen]
    head = ids[:count]
    supervised = sample.labels[:count] != -100
    if keep is not None:
        supervised &= keep.to(ids.device)
    ids[:count] = torch.where(supervised, noise.to(ids.device), head)
    if count == 0:
        return dataclasses.replace(sample, input_ids=ids)
    with torch.no_grad():
        logits = combined(ids[:count], None if sample.attention_mask is None else sample.attention_mask[:count])
    teacher, indices = sample.teacher.clone(), sample.teacher_indices
    if indices is None:
        teacher[:count] = logits.to(teacher.dtype)
    else:
        values, top = logits.float().topk(indices.shape[-1], dim=-1)
        teacher[:count], indices = values.to(teacher.dtype), indices.clone()
        indices[:count] = top
    return dataclasses.replace(sample, input_ids=ids, teacher=teacher, teacher_indices=indices)


def sleep_loss(
    student: torch.Tensor, sample: ReplaySample, temperature: float, label_weight: float, pseudo_rows: int = 0,
    distributed: Distributed = SINGLE, total: int = 0, pseudo_total: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, mean KL): the distillation loss of (B, T, V) student logits against the sample's teachers,
    plus ``label_weight`` times the cross-entropy on the stored labels of rows ``pseudo_rows:`` (pseudo
    samples' labels do not fit their perturbed inputs).

    Data parallel: ``sample`` holds this rank's rows of a sample of ``total`` (``pseudo_total`` of them
    pseudo-samples); each term is this rank's share of the whole sample's."""
    dp = distributed
    loss, kl = distillation_loss(student, sample.teacher, sample.labels != -100, sample.teacher_indices, temperature)
    loss, kl = dp.share(loss, len(sample), total), dp.share(kl, len(sample), total)
    if label_weight > 0 and pseudo_rows < student.shape[0]:
        labelled = student[pseudo_rows:].float().flatten(0, 1)
        label_loss = F.cross_entropy(labelled, sample.labels[pseudo_rows:].flatten(), ignore_index=-100)
        loss = loss + label_weight * dp.share(label_loss, len(sample) - pseudo_rows, total - pseudo_total)
    return loss, kl


@dataclass
class SleepStepResult:
    """One consolidation step. Tensors stay on the device: reading them is a host sync."""

    updated: bool  # False: the loss or (with fp16) a gradient was not finite and the neocortex was not stepped
    kl: torch.Tensor | None  # scalar mean KL(teacher || student), when updated
    penalty: torch.Tensor | None  # scalar EWC penalty, when updated and asked for


def sleep_step(
    neocortex: Neocortex,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    sample: ReplaySample,
    ewc: EwcState,
    settings: SleepSettings,
    precision: Precision,
    *,
    report_penalty: bool = False,
    pseudo_rows: int = 0,
    distributed: Distributed = SINGLE,
    pseudo_total: int = 0,
) -> SleepStepResult:
    """Distil ``sample``'s teachers into the neocortex alone, with online Fisher and the EWC gradient.

    With ``settings.label_weight`` > 0 the loss adds that weight times the cross-entropy on the stored
    labels of the episodes (the first ``pseudo_rows`` are pseudo-samples, whose labels do not fit their
    perturbed inputs: they are distilled only). The consolidated parameters must have ``requires_grad``
    on (``sleep_cycle`` sees to it).

    Data parallel: ``sample`` is this rank's part of a sample of ``settings.batch_size`` episodes; the
    gradients are summed over ranks before the Fisher, the EWC term and the step see them, so every
    rank updates the Fisher from the gradient of the whole sample. Whether the step is skipped is
    decided on the summed loss, alike on every rank.
    """
    params, dp = ewc.params, distributed
    optimizer.zero_grad(set_to_none=True)
    if len(sample):
        with precision.autocast():
            student = neocortex.decode(neocortex.encode(sample.input_ids, sample.attention_mask), sample.attention_mask)
        loss, kl = sleep_loss(student, sample, settings.temperature, settings.label_weight, pseudo_rows,
                              dp, settings.batch_size, pseudo_total)
        if not dp.parallel and not torch.isfinite(loss):  # one host sync per sleep step: never step on NaN
            return SleepStepResult(False, None, None)
        scaler.scale(loss).backward()
    else:  # this rank holds none of the sample: it adds zero gradients to the sum
        loss = kl = torch.zeros((), device=params[0].device)
    if dp.parallel:
        loss, kl = dp.sum_gradients(params, [loss.detach(), kl.detach()])
        if not torch.isfinite(loss):  # the summed loss: every rank skips alike
            optimizer.zero_grad(set_to_none=True)
            return SleepStepResult(False, None, None)
    scaler.unscale_(optimizer)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    if scaler.is_enabled() and not bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()):
        # fp16 overflow: the scaler skips the step and lowers its scale; the Fisher must never see inf
        # (an inf in F turns every later EWC gradient into NaN, which the scaler no longer checks).
        scaler.step(optimizer)
        scaler.update()
        return SleepStepResult(False, None, None)
    # Fisher from the same backward pass that trains the student (no second autograd.grad).
    update_fisher(ewc.fisher, grads, settings.fisher_decay)
    penalty = None
    if settings.ewc_lambda > 0:
        scale = fisher_scale(ewc.fisher, settings.normalize_fisher)
        if report_penalty:  # a full sweep over the parameters: only for the report; theta is unchanged yet
            with torch.no_grad():
                penalty = ewc_penalty(params, ewc.anchors, ewc.fisher, settings.ewc_lambda, scale)
        add_ewc_gradient(params, ewc.anchors, ewc.fisher, settings.ewc_lambda, scale)
    if settings.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return SleepStepResult(True, kl.detach(), penalty)


@contextlib.contextmanager
def trainable(params: Sequence[torch.nn.Parameter]) -> Iterator[None]:
    """``requires_grad`` on for ``params`` inside the block, restored after (wake may train them too)."""
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def sleep_cycle(
    neocortex: Neocortex,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    replay: ReplayBuffer,
    ewc: EwcState,
    num_steps: int,
    settings: SleepSettings,
    precision: Precision,
    combined: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    generator: torch.Generator,
    distributed: Distributed = SINGLE,
) -> SleepStats:
    """``num_steps`` consolidation steps, then the anchor is re-taken. The neocortex trains only here."""
    kl_sum, updates, skipped, samples = None, 0, 0, 0
    penalty = None
    n_pseudo = int(round(settings.pseudo_ratio * settings.batch_size))
    with trainable(ewc.params):
        for index in range(num_steps):
            sample = replay.sample(settings.batch_size)  # data parallel: the drawn episodes this rank holds
            if n_pseudo:
                sample = pseudo_samples(
                    sample, n_pseudo, neocortex.vocab_size, settings.pseudo_kind, settings.perturb_prob, combined, generator
                )
            result = sleep_step(neocortex, optimizer, scaler, sample, ewc, settings, precision,
                                report_penalty=index == num_steps - 1, pseudo_rows=sample.leading(n_pseudo),
                                distributed=distributed, pseudo_total=n_pseudo)
            samples += len(sample)
            if not result.updated:
                skipped += 1
                continue
            kl_sum = result.kl if kl_sum is None else kl_sum + result.kl  # summed on the device: no sync per step
            penalty = result.penalty if result.penalty is not None else penalty
            updates += 1
    ewc.retake_anchor()
    return SleepStats(
        steps=num_steps, updates=updates, skipped=skipped,
        distill_kl=0.0 if kl_sum is None else float(kl_sum) / max(updates, 1),
        ewc_penalty=0.0 if penalty is None else float(penalty), samples=samples,
    )


@torch.no_grad()
def refresh_teachers(
    replay: ReplayBuffer, combined: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], batch_size: int
) -> int:
    """Replace each stored teacher by the combined model's logits where those are more accurate on the
    episode's labels (spec §5: a task's first episodes keep the wrong teachers of a hippocampus that had
    not learned it yet). Returns how many teachers this rank replaced (each rank refreshes the episodes
    it holds; the decision is per episode)."""
    replaced = 0
    rows = replay.local_rows()
    for start in range(0, len(rows), batch_size):
        index = rows[start : start + batch_size]
        sample = replay.gather_rows(index)
        supervised = sample.labels != -100
        logits = combined(sample.input_ids, sample.attention_mask)
        now = ((logits.argmax(-1) == sample.labels) & supervised).sum(1)  # (N,) correct tokens
        stored = ((replay.teacher_argmax(index) == sample.labels) & supervised).sum(1)
        better = now > stored
        if bool(better.any()):
            replay.write_teachers(index[better], logits[better])
            replaced += int(better.sum())
    return replaced
