"""Joint training (the upper bound): the neocortex on batches drawn i.i.d. from every task's training
stream at once, ignoring the order the stream presents them in.

Step ``s`` draws each of its ``train.batch_size`` examples from a task chosen uniformly (a generator
seeded by (seed, s), so resume is exact) and takes them from that task's stream with
``benchmark.task_batch(task, s * num_tasks + task, count)``. The same optimizer steps and examples per
step as fine-tuning; the memory is all the data.
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
from biollm_core.protocols import Batch, ContinualBenchmark, Neocortex


def iid_batch(benchmark: ContinualBenchmark, step: int, batch_size: int, seed: int) -> Batch:
    """``batch_size`` examples, each from a uniformly drawn task, as one batch (task_id -1: mixed)."""
    K = benchmark.num_tasks
    generator = torch.Generator().manual_seed((seed + 1) * 1_000_033 + step)
    counts = torch.bincount(torch.randint(0, K, (batch_size,), generator=generator), minlength=K).tolist()
    parts = [benchmark.task_batch(task, step * K + task, n) for task, n in enumerate(counts) if n]
    masks = [p.attention_mask for p in parts]
    mask = None if masks[0] is None else torch.cat(masks)
    return Batch(torch.cat([p.input_ids for p in parts]), torch.cat([p.labels for p in parts]), -1, mask)


class Joint:
    def __init__(
        self, learner: NeocortexLearner, benchmark: ContinualBenchmark, device: torch.device, *, batch_size: int, seed: int
    ) -> None:
        self.learner, self.benchmark, self.device = learner, benchmark, device
        self.batch_size, self.seed = batch_size, seed
        self.samples_processed = 0

    def observe(self, batch: Batch, step: int) -> StepOutput:
        mixed = iid_batch(self.benchmark, step, self.batch_size, self.seed)  # the stream's batch is not used
        mixed = mixed.rows(self.learner.distributed.rows(len(mixed))).to(self.device)  # data parallel: this rank's shard
        logits = self.learner.logits(mixed.input_ids, mixed.attention_mask)  # (B, T, V)
        loss = label_loss(logits, mixed.labels)
        self.learner.step(self.learner.share(loss, len(mixed)))
        self.samples_processed += len(mixed)
        return self.learner.figures(loss, logits, mixed.labels)

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        return {}

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        return self.learner.neocortex, None

    def summary(self) -> MethodSummary:
        episodes = self.benchmark.train_size(self.batch_size)
        example = self.benchmark.heldout(0)
        # The data it draws from, counted as the replay buffer would store it: int32 ids (or the features
        # in their dtype) and int32 labels.
        x = example.input_ids
        per_episode = (x.element_size() if x.is_floating_point() else 4) * x.shape[1] + 4 * example.labels.shape[1]
        return MethodSummary(episodes, episodes * per_episode, self.learner.trainable_params(),
                             self.learner.gradient_steps, self.samples_processed)

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "samples_processed": self.samples_processed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.samples_processed = int(state["samples_processed"])


def build(config: RunConfig, context: MethodContext) -> Joint:
    learner = build_learner(config, context.benchmark.input_vocab_size, context.device, context.precision, context.distributed)
    return Joint(learner, context.benchmark, context.device, batch_size=config.train.batch_size, seed=config.seed)
