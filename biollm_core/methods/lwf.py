"""Learning without Forgetting (Li and Hoiem 2016): fine-tuning plus distillation from the model as it
was at the last task switch, on the current batch.

At each task switch a frozen copy of the neocortex is kept. From then on the loss is
``CE + alpha * T^2 * KL(softmax(old / T) || softmax(new / T))`` over the supervised tokens, with the
paper's temperature ``T = 2``. Memory: the copy of the model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from biollm_core.config.schema import RunConfig
from biollm_core.hippocampus import Hippocampus
from biollm_core.methods import MethodContext
from biollm_core.methods.protocol import MethodSummary, StepInfo, StepOutput
from biollm_core.methods.supervised import NeocortexLearner, build_learner, label_loss, tensor_bytes
from biollm_core.protocols import Batch, Neocortex


def lwf_distillation(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` per supervised token, averaged.

    student, teacher: (B, T, V) logits; mask: (B, T) bool. Scaling by T^2 keeps the gradient's size
    independent of T (Hinton et al. 2015).
    """
    teacher_logp = F.log_softmax(teacher.float() / temperature, dim=-1)
    student_logp = F.log_softmax(student.float() / temperature, dim=-1)
    kl = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)  # (B, T)
    weight = mask.float()
    return temperature**2 * (kl * weight).sum() / weight.sum().clamp_min(1.0)


def frozen_copy(neocortex: Neocortex) -> Neocortex:
    """A frozen deep copy. Compiled halves (train.compile) are instance attributes bound to the original
    module: they are dropped so the copy runs its own weights."""
    teacher = copy.deepcopy(neocortex).requires_grad_(False)
    for name in ("encode", "decode"):
        teacher.__dict__.pop(name, None)
    return teacher


class Lwf:
    def __init__(self, learner: NeocortexLearner, *, alpha: float, temperature: float) -> None:
        self.learner, self.alpha, self.temperature = learner, alpha, temperature
        self.teacher: Neocortex | None = None  # the neocortex frozen at the last task switch
        self.samples_processed = 0

    def observe(self, batch: Batch, step: int) -> StepOutput:
        logits = self.learner.logits(batch.input_ids, batch.attention_mask)  # (B, T, V)
        task_loss = label_loss(logits, batch.labels)
        loss = task_loss
        if self.teacher is not None:
            with torch.no_grad(), self.learner.precision.autocast():
                old = self.teacher.decode(self.teacher.encode(batch.input_ids, batch.attention_mask), batch.attention_mask)
            loss = loss + self.alpha * lwf_distillation(logits, old, batch.labels != -100, self.temperature)
        self.learner.step(self.learner.share(loss, len(batch)))
        self.samples_processed += len(batch)
        return self.learner.figures(task_loss, logits, batch.labels)

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        if info.segment_end:
            self.teacher = frozen_copy(self.learner.neocortex)
        return {}

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        return self.learner.neocortex, None

    def summary(self) -> MethodSummary:
        kept = 0 if self.teacher is None else tensor_bytes(self.teacher.state_dict().values())
        return MethodSummary(0, kept, self.learner.trainable_params(), self.learner.gradient_steps, self.samples_processed)

    def state_dict(self) -> dict[str, Any]:
        teacher = None if self.teacher is None else self.teacher.state_dict()
        return {"learner": self.learner.state_dict(), "teacher": teacher, "samples_processed": self.samples_processed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.teacher = None
        if state["teacher"] is not None:
            self.teacher = frozen_copy(self.learner.neocortex)
            self.teacher.load_state_dict(state["teacher"])
        self.samples_processed = int(state["samples_processed"])


def build(config: RunConfig, context: MethodContext) -> Lwf:
    learner = build_learner(config, context.benchmark.input_vocab_size, context.device, context.precision, context.distributed)
    return Lwf(learner, alpha=config.method.alpha, temperature=config.method.temperature)
