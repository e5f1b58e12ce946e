"""Fine-tuning (the lower bound, spec §10): the neocortex trained on each batch as it comes, nothing kept.

It forgets: on a stream of tasks it ends about one task's worth of seen-task accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from biollm_core.config.schema import RunConfig
from biollm_core.hippocampus import Hippocampus
from biollm_core.methods import MethodContext
from biollm_core.methods.protocol import MethodSummary, StepInfo, StepOutput
from biollm_core.methods.supervised import NeocortexLearner, build_learner, label_loss
from biollm_core.protocols import Batch, Neocortex


class Finetune:
    def __init__(self, learner: NeocortexLearner) -> None:
        self.learner = learner
        self.samples_processed = 0

    def observe(self, batch: Batch, step: int) -> StepOutput:
        logits = self.learner.logits(batch.input_ids, batch.attention_mask)  # (B, T, V)
        loss = label_loss(logits, batch.labels)
        self.learner.step(self.learner.share(loss, len(batch)))
        self.samples_processed += len(batch)
        return self.learner.figures(loss, logits, batch.labels)

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        return {}

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        return self.learner.neocortex, None

    def summary(self) -> MethodSummary:
        return MethodSummary(0, 0, self.learner.trainable_params(), self.learner.gradient_steps, self.samples_processed)

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "samples_processed": self.samples_processed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.samples_processed = int(state["samples_processed"])


def build(config: RunConfig, context: MethodContext) -> Finetune:
    return Finetune(build_learner(config, context.benchmark.input_vocab_size, context.device, context.precision,
                                  context.distributed))
