"""Experience replay (Chaudhry et al. 2019, "On tiny episodic memories in continual learning").

A reservoir of ``replay.capacity`` labelled episodes (the same memory the CLS learner gets). Each step
trains the neocortex on the current batch concatenated with an equal-size batch drawn uniformly from
the reservoir, then offers the current batch to the reservoir. Memory: inputs and labels, no logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from biollm_core.config.schema import RunConfig
from biollm_core.hippocampus import Hippocampus
from biollm_core.methods import MethodContext
from biollm_core.methods.protocol import MethodSummary, StepInfo, StepOutput
from biollm_core.methods.supervised import NeocortexLearner, build_learner, label_loss
from biollm_core.protocols import Batch, Neocortex
from biollm_core.replay_buffer import ReplayBuffer


def with_replay(batch: Batch, replay: ReplayBuffer, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(ids, labels, mask) of ``batch`` followed by ``count`` episodes drawn from ``replay`` (none while it is empty)."""
    if len(replay) == 0 or count == 0:
        return batch.input_ids, batch.labels, batch.attention_mask
    sample = replay.sample(count)
    mask = None
    if batch.attention_mask is not None:
        mask = torch.cat([batch.attention_mask.bool(), sample.attention_mask])
    return torch.cat([batch.input_ids, sample.input_ids]), torch.cat([batch.labels, sample.labels]), mask


class ExperienceReplay:
    def __init__(self, learner: NeocortexLearner, replay: ReplayBuffer, *, replay_batch_size: int) -> None:
        self.learner, self.replay, self.replay_batch_size = learner, replay, replay_batch_size
        self.samples_processed = 0

    def observe(self, batch: Batch, step: int) -> StepOutput:
        ids, labels, mask = with_replay(batch, self.replay, self.replay_batch_size)  # (B + R, T); R: replayed rows held here
        logits = self.learner.logits(ids, mask)  # (B + R, T, V)
        replayed = self.replay_batch_size if len(self.replay) else 0  # the global batch's replayed rows
        total = len(batch) * self.learner.distributed.world_size + replayed
        self.learner.step(self.learner.share(label_loss(logits, labels), ids.shape[0], total))
        self.samples_processed += ids.shape[0]
        current = logits[: len(batch)].detach()
        self.replay.add(input_ids=batch.input_ids, labels=batch.labels, attention_mask=batch.attention_mask,
                        task_id=batch.task_id, step=step)
        return self.learner.figures(label_loss(current, batch.labels), current, batch.labels)

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


def build_labelled_replay(config: RunConfig, context: MethodContext, teacher_storage: str) -> ReplayBuffer:
    """A reservoir of ``replay.capacity`` episodes with labels (and logits unless ``teacher_storage="none"``)."""
    r = config.replay
    return ReplayBuffer(
        capacity=r.capacity, seq_len=context.seq_len, vocab_size=config.model.vocab_size, top_k_experts=0,
        teacher_storage=teacher_storage, teacher_topk=r.teacher_topk, device=context.device, seed=config.seed + 2,
        with_attention_mask=context.with_attention_mask, distributed=context.distributed,
    )


def build(config: RunConfig, context: MethodContext) -> ExperienceReplay:
    learner = build_learner(config, context.benchmark.input_vocab_size, context.device, context.precision, context.distributed)
    replay = build_labelled_replay(config, context, teacher_storage="none")
    return ExperienceReplay(learner, replay, replay_batch_size=config.method.replay_batch_size or config.train.batch_size)
