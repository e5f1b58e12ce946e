"""DER++ (Buzzega et al. 2020, "Dark experience for general continual learning").

Each episode is stored in a reservoir of ``replay.capacity`` with its labels and the logits the model
gave it when it was seen (``replay.teacher_storage``: all of them in fp16, or the top-k). The loss is
``CE(current) + alpha * MSE(logits(x'), stored logits') + beta * CE(logits(x''), labels'')`` with x' and
x'' two independent batches drawn uniformly from the reservoir; with top-k storage the MSE is taken
on the stored entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from biollm_core.config.schema import RunConfig
from biollm_core.hippocampus import Hippocampus
from biollm_core.methods import MethodContext
from biollm_core.methods.er import build_labelled_replay
from biollm_core.methods.protocol import MethodSummary, StepInfo, StepOutput
from biollm_core.methods.supervised import NeocortexLearner, build_learner, label_loss
from biollm_core.protocols import Batch, Neocortex
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_sample import ReplaySample


def logit_mse(student: torch.Tensor, sample: ReplaySample) -> torch.Tensor:
    """Mean squared error between (B, T, V) logits and the sample's stored logits on supervised tokens."""
    stored = sample.teacher.float()  # (B, T, V) or (B, T, K)
    current = student.float() if sample.teacher_indices is None else student.float().gather(-1, sample.teacher_indices)
    mask = (sample.labels != -100).unsqueeze(-1).float()  # (B, T, 1)
    return ((current - stored).pow(2) * mask).sum() / (mask.sum() * stored.shape[-1]).clamp_min(1.0)


class Derpp:
    def __init__(self, learner: NeocortexLearner, replay: ReplayBuffer, *, alpha: float, beta: float, replay_batch_size: int) -> None:
        self.learner, self.replay = learner, replay
        self.alpha, self.beta, self.replay_batch_size = alpha, beta, replay_batch_size
        self.samples_processed = 0

    def observe(self, batch: Batch, step: int) -> StepOutput:
        if not len(self.replay):
            logits = self.learner.logits(batch.input_ids, batch.attention_mask)  # (B, T, V)
            task_loss = label_loss(logits, batch.labels)
            loss = self.learner.share(task_loss, len(batch))
        else:
            for_logits, for_labels = self.replay.sample(self.replay_batch_size), self.replay.sample(self.replay_batch_size)
            ids = torch.cat([batch.input_ids, for_logits.input_ids, for_labels.input_ids])  # (B + 2R, T): one forward pass
            mask = None
            if batch.attention_mask is not None:
                mask = torch.cat([batch.attention_mask.bool(), for_logits.attention_mask, for_labels.attention_mask])
            R, share = self.replay_batch_size, self.learner.share  # each term: this rank's part of the global batch's
            parts = [len(batch), len(for_logits), len(for_labels)]  # data parallel: the replayed rows this rank holds
            logits, replayed_logits, replayed_labels = self.learner.logits(ids, mask).split(parts)
            task_loss = label_loss(logits, batch.labels)
            loss = (share(task_loss, len(batch)) + self.alpha * share(logit_mse(replayed_logits, for_logits), len(for_logits), R)
                    + self.beta * share(label_loss(replayed_labels, for_labels.labels), len(for_labels), R))
            self.samples_processed += len(for_logits) + len(for_labels)
        self.samples_processed += len(batch)
        self.learner.step(loss)
        self.replay.add(input_ids=batch.input_ids, labels=batch.labels, attention_mask=batch.attention_mask,
                        task_id=batch.task_id, step=step, teacher_logits=logits.detach())
        return self.learner.figures(task_loss, logits, batch.labels)

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        return {"replay_size": len(self.replay)}

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        return self.learner.neocortex, None

    def summary(self) -> MethodSummary:
        return MethodSummary(self.replay.capacity, self.replay.nbytes(), self.learner.trainable_params(),
                             self.learner.gradient_steps, self.samples_processed)

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "replay": self.replay.state_dict(), "samples_processed": self.samples_processed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.replay.load_state_dict(state["replay"])
        self.samples_processed = int(state["samples_processed"])


def build(config: RunConfig, context: MethodContext) -> Derpp:
    m = config.method
    learner = build_learner(config, context.benchmark.input_vocab_size, context.device, context.precision, context.distributed)
    replay = build_labelled_replay(config, context, teacher_storage=config.replay.teacher_storage)
    return Derpp(learner, replay, alpha=m.alpha, beta=m.beta, replay_batch_size=m.replay_batch_size or config.train.batch_size)
