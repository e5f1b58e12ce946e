"""The CLS learner without sleep (the seed's ablation): the hippocampus learns awake through the frozen
neocortex, and nothing is ever consolidated, refreshed or remembered.

The same wake step as ``cls`` (``biollm_core/wake.py``), with no replay buffer: no episode is stored,
so its memory is none and the teacher decode after the step is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from biollm_core import builders
from biollm_core.config.schema import RunConfig
from biollm_core.device import Precision
from biollm_core.distributed import SINGLE, Distributed
from biollm_core.hippocampus import Hippocampus
from biollm_core.methods import MethodContext
from biollm_core.methods.protocol import MethodSummary, StepInfo, StepOutput
from biollm_core.protocols import Batch, Neocortex
from biollm_core.routing import usage_entropy
from biollm_core.wake import wake_step


class Nosleep:
    def __init__(
        self, neocortex: Neocortex, hippocampus: Hippocampus, optimizer: torch.optim.Optimizer, precision: Precision, *,
        reward_alpha: float, reward_from_correctness: bool, routing_reg_weight: float, drift_interval: int,
        distributed: Distributed = SINGLE,
    ) -> None:
        self.neocortex, self.hippocampus, self.optimizer, self.precision = neocortex, hippocampus, optimizer, precision
        self.scaler = precision.grad_scaler()
        self.reward_alpha, self.reward_from_correctness = reward_alpha, reward_from_correctness
        self.routing_reg_weight, self.drift_interval = routing_reg_weight, drift_interval
        self.gradient_steps = 0
        self.samples_processed = 0
        self.distributed = distributed

    def observe(self, batch: Batch, step: int) -> StepOutput:
        result = wake_step(
            self.neocortex, self.hippocampus, self.optimizer, self.scaler, None, batch, step, self.precision,
            reward_alpha=self.reward_alpha, reward_from_correctness=self.reward_from_correctness,
            routing_reg_weight=self.routing_reg_weight, distributed=self.distributed,
        )
        self.gradient_steps += 1
        self.samples_processed += len(batch)
        if (step + 1) % self.drift_interval == 0:
            self.hippocampus.update_drift()
        return StepOutput(result.task_loss, result.accuracy)

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        return {"expert_util_entropy": usage_entropy(self.hippocampus.counts)}

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        return self.neocortex, self.hippocampus

    def summary(self) -> MethodSummary:
        trainable = sum(p.numel() for p in self.hippocampus.parameters())
        return MethodSummary(0, 0, trainable, self.gradient_steps, self.samples_processed)

    def state_dict(self) -> dict[str, Any]:
        return {"neocortex": self.neocortex.state_dict(), "hippocampus": self.hippocampus.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "gradient_steps": self.gradient_steps, "samples_processed": self.samples_processed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.neocortex.load_state_dict(state["neocortex"])
        self.hippocampus.load_state_dict(state["hippocampus"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.gradient_steps = int(state["gradient_steps"])
        self.samples_processed = int(state["samples_processed"])


def build(config: RunConfig, context: MethodContext) -> Nosleep:
    e = config.experts
    neocortex = builders.build_device_neocortex(config, context.benchmark.input_vocab_size, context.device, context.precision)
    hippocampus = builders.build_hippocampus(config, neocortex.hidden_size).to(context.device)
    optimizer = builders.adamw(hippocampus.parameters(), lr=e.fast_lr, weight_decay=e.weight_decay)
    return Nosleep(neocortex, hippocampus, optimizer, context.precision, reward_alpha=e.reward_alpha,
                   reward_from_correctness=config.train.reward_from_correctness, routing_reg_weight=e.routing_reg_weight,
                   drift_interval=e.drift_interval, distributed=context.distributed)
