"""Learning without Forgetting (Li and Hoiem 2016): fine-tuning plus distillation from the model as it
was at the last task switch, on the current batch.

At each task switch a frozen copy of the neocortex is kept. From then on the loss is
``CE + alpha * T^2 * KL(softmax(old / T) || softmax(new / T))`` over the supervised tokens, with the
paper's temperature ``T = 2``. Memory: the copy of the model.

On a classifier (the feature benchmarks, ``classes=True``) the old model's answers that matter are
those it was trained to give: as in the paper (the old tasks' outputs) and in van de Ven et al. 2019's
class-incremental LwF, the distillation is taken over the (head, class) pairs some earlier segment
supervised, each head's softmax over those classes only. Task-incremental: the earlier tasks' heads;
class-incremental: the single head's earlier classes; domain-incremental: every class of the shared
head. The current task's new outputs learn from their labels alone. Token models distil every
supervised token over the whole vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from biollm_core.builders import copy_neocortex
from biollm_core.config.schema import RunConfig
from biollm_core.hippocampus import Hippocampus
from biollm_core.methods import MethodContext
from biollm_core.methods.protocol import MethodSummary, StepInfo, StepOutput
from biollm_core.methods.supervised import NeocortexLearner, build_learner, label_loss, tensor_bytes
from biollm_core.protocols import Batch, FeatureBenchmark, Neocortex

MASKED_LOGIT = -1e4  # a logit outside ``classes``: exp(-1e4 / T) is exactly 0 in float32, and finite


def lwf_distillation(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float, classes: torch.Tensor | None = None
) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` per supervised token, averaged.

    student, teacher: (B, T, V) logits; mask: (B, T) bool. ``classes`` (T, V) bool, optional: the softmax
    at position t is taken over the classes ``classes[t]`` only. Scaling by T^2 keeps the gradient's
    size independent of T (Hinton et al. 2015).
    """
    if classes is not None:
        teacher, student = teacher.float().masked_fill(~classes, MASKED_LOGIT), student.float().masked_fill(~classes, MASKED_LOGIT)
    teacher_logp = F.log_softmax(teacher.float() / temperature, dim=-1)
    student_logp = F.log_softmax(student.float() / temperature, dim=-1)
    kl = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)  # (B, T)
    weight = mask.float()
    return temperature**2 * (kl * weight).sum() / weight.sum().clamp_min(1.0)


def frozen_copy(neocortex: Neocortex) -> Neocortex:
    """A frozen deep copy that runs its own weights (uncompiled: ``builders.copy_neocortex``)."""
    return copy_neocortex(neocortex).requires_grad_(False)


class Lwf:
    def __init__(
        self, learner: NeocortexLearner, *, alpha: float, temperature: float, classes: bool = False, num_positions: int = 1
    ) -> None:
        self.learner, self.alpha, self.temperature, self.classes = learner, alpha, temperature, classes
        self.teacher: Neocortex | None = None  # the neocortex frozen at the last task switch
        self.samples_processed = 0
        shape, device = (num_positions, learner.neocortex.vocab_size), next(iter(learner.params)).device
        self.seen = torch.zeros(shape, dtype=torch.bool, device=device)  # classifier: (head, class) pairs supervised so far (L, V)
        self.old_classes = torch.zeros(shape, dtype=torch.bool, device=device)  # those supervised before the last switch

    def distill(self, logits: torch.Tensor, old: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not self.classes:
            return lwf_distillation(logits, old, labels != -100, self.temperature)
        heads = self.old_classes.any(-1).expand(labels.shape)  # (B, L): the heads with earlier classes
        return lwf_distillation(logits, old, heads, self.temperature, self.old_classes)

    def observe(self, batch: Batch, step: int) -> StepOutput:
        logits = self.learner.logits(batch.input_ids, batch.attention_mask)  # (B, T, V)
        task_loss = label_loss(logits, batch.labels)
        loss = task_loss
        if self.teacher is not None:
            with torch.no_grad(), self.learner.precision.autocast():
                old = self.teacher.decode(self.teacher.encode(batch.input_ids, batch.attention_mask), batch.attention_mask)
            loss = loss + self.alpha * self.distill(logits, old, batch.labels)
        if self.classes:  # data parallel: the classes any rank's rows supervise (the same on every rank)
            self.seen |= self.learner.distributed.all_reduce_sum(supervised_classes(batch.labels, self.seen.shape[1]).float()) > 0
        self.learner.step(self.learner.share(loss, len(batch)))
        self.samples_processed += len(batch)
        return self.learner.figures(task_loss, logits, batch.labels)

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        if info.segment_end:
            self.teacher = frozen_copy(self.learner.neocortex)
            self.old_classes = self.seen.clone()
        return {}

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        return self.learner.neocortex, None

    def summary(self) -> MethodSummary:
        kept = 0 if self.teacher is None else tensor_bytes(self.teacher.state_dict().values())
        return MethodSummary(0, kept, self.learner.trainable_params(), self.learner.gradient_steps, self.samples_processed)

    def state_dict(self) -> dict[str, Any]:
        teacher = None if self.teacher is None else self.teacher.state_dict()
        return {"learner": self.learner.state_dict(), "teacher": teacher, "samples_processed": self.samples_processed,
                "seen": self.seen, "old_classes": self.old_classes}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.teacher = None
        if state["teacher"] is not None:
            self.teacher = frozen_copy(self.learner.neocortex)
            self.teacher.load_state_dict(state["teacher"])
        self.samples_processed = int(state["samples_processed"])
        self.seen.copy_(state["seen"])
        self.old_classes = state["old_classes"].to(self.seen.device, copy=True)


def supervised_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, L) labels, -100 = unsupervised -> (L, V) bool: the classes some row asks for at each position."""
    supervised = labels != -100
    hits = F.one_hot(labels.clamp_min(0), num_classes).bool() & supervised.unsqueeze(-1)  # (B, L, V)
    return hits.any(0)


def build(config: RunConfig, context: MethodContext) -> Lwf:
    learner = build_learner(config, context.benchmark.input_vocab_size, context.device, context.precision, context.distributed)
    classifier = isinstance(context.benchmark, FeatureBenchmark)  # labels are classes, positions are output heads
    return Lwf(learner, alpha=config.method.alpha, temperature=config.method.temperature, classes=classifier,
               num_positions=context.seq_len)
