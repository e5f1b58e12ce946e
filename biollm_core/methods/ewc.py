"""Online EWC (Schwarz et al. 2018, after Kirkpatrick et al. 2017): fine-tuning with a quadratic pull
towards the weights each finished task left, weighted by its empirical Fisher.

At every task switch (a segment end) the Fisher of the finished task is estimated from per-sample
gradients of the log-likelihood of the labels on ``fisher_samples`` of that task's own training
examples (the last batches of its segment), ``F <- decay * F + F_task``, and the anchor is re-taken.
The loss is ``CE + lambda/2 * sum_i F_i (theta_i - theta*_i)^2``; its gradient is added analytically.
Unlike the CLS learner's sleep EWC (``biollm_core/sleep.py``), this Fisher is not normalised:
``lambda`` is swept in the sweep file, as in the papers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from biollm_core.config.schema import RunConfig
from biollm_core.ewc import add_ewc_gradient, ewc_penalty
from biollm_core.hippocampus import Hippocampus
from biollm_core.methods import MethodContext
from biollm_core.methods.protocol import MethodSummary, StepInfo, StepOutput
from biollm_core.methods.supervised import NeocortexLearner, build_learner, label_loss, tensor_bytes
from biollm_core.protocols import Batch, ContinualBenchmark, Neocortex


def empirical_fisher(learner: NeocortexLearner, batches: list[Batch]) -> list[torch.Tensor]:
    """Mean over examples of the squared per-example gradient of their label loss (one backward each).

    Each example's loss is its mean cross-entropy over supervised tokens, the scale of the training loss.
    Data parallel: each rank takes its share of every batch's examples, and the sums are reduced.
    """
    dp = learner.distributed
    fisher = [torch.zeros_like(p) for p in learner.params]
    count = 0
    for batch in batches:
        rows = dp.rows(len(batch))
        for row in range(rows.start, rows.stop):
            mask = None if batch.attention_mask is None else batch.attention_mask[row : row + 1]
            logits = learner.logits(batch.input_ids[row : row + 1], mask)
            grads = torch.autograd.grad(label_loss(logits, batch.labels[row : row + 1]), learner.params, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(learner.params, grads, strict=True)]
            torch._foreach_addcmul_(fisher, grads, grads)
            count += 1
    if dp.parallel:  # one collective: every parameter's sum and the example count
        *fisher, total = dp.all_reduce_many([*fisher, torch.tensor([float(count)], device=fisher[0].device)])
        count = int(total)
    torch._foreach_div_(fisher, max(count, 1))
    return fisher


class OnlineEwc:
    def __init__(
        self, learner: NeocortexLearner, benchmark: ContinualBenchmark, device: torch.device, *,
        lambda_: float, decay: float, fisher_samples: int, batch_size: int,
    ) -> None:
        self.learner, self.benchmark, self.device = learner, benchmark, device
        self.lambda_, self.decay, self.fisher_samples, self.batch_size = lambda_, decay, fisher_samples, batch_size
        self.fisher = [torch.zeros_like(p) for p in learner.params]
        self.anchors = [p.detach().clone() for p in learner.params]
        self.unit = torch.ones((), device=device)  # the Fisher's scale: raw (add_ewc_gradient takes a tensor)
        self.tasks_consolidated = 0
        self.segment_start = 0  # first step of the current task segment
        self.samples_processed = 0
        self.fisher_backward_passes = 0  # per-example backward passes of the Fisher estimates (compute, not training)

    def observe(self, batch: Batch, step: int) -> StepOutput:
        logits = self.learner.logits(batch.input_ids, batch.attention_mask)  # (B, T, V)
        loss = label_loss(logits, batch.labels)
        share = self.learner.share(loss, len(batch))
        if self.tasks_consolidated:
            params, anchors, fisher = self.learner.params, self.anchors, self.fisher
            self.learner.step(share, lambda: add_ewc_gradient(params, anchors, fisher, self.lambda_ / 2, self.unit))
        else:
            self.learner.step(share)
        self.samples_processed += len(batch)
        return self.learner.figures(loss, logits, batch.labels)

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        if not info.segment_end:
            return {}
        steps = range(info.step - 1, self.segment_start - 1, -1)  # the finished task's batches, latest first
        batches, taken = [], 0
        for step in steps:
            if taken >= self.fisher_samples:
                break
            batch = self.benchmark.task_batch(info.task_id, step, min(self.batch_size, self.fisher_samples - taken))
            batches.append(batch.to(self.device))
            taken += len(batch)
        task_fisher = empirical_fisher(self.learner, batches)
        self.fisher_backward_passes += taken
        torch._foreach_mul_(self.fisher, self.decay)
        torch._foreach_add_(self.fisher, task_fisher)
        with torch.no_grad():
            torch._foreach_copy_(self.anchors, [p.detach() for p in self.learner.params])
        self.tasks_consolidated += 1
        self.segment_start = info.step
        return {"fisher_mean": torch.stack([f.mean() for f in self.fisher]).mean(),
                "ewc_penalty": ewc_penalty(self.learner.params, self.anchors, self.fisher, self.lambda_ / 2).detach()}

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        return self.learner.neocortex, None

    def summary(self) -> MethodSummary:
        return MethodSummary(0, tensor_bytes(self.fisher + self.anchors), self.learner.trainable_params(),
                             self.learner.gradient_steps, self.samples_processed,
                             {"tasks_consolidated": self.tasks_consolidated, "fisher_backward_passes": self.fisher_backward_passes})

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "fisher": self.fisher, "anchors": self.anchors,
                "tasks_consolidated": self.tasks_consolidated, "segment_start": self.segment_start,
                "samples_processed": self.samples_processed, "fisher_backward_passes": self.fisher_backward_passes}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        with torch.no_grad():
            torch._foreach_copy_(self.fisher, list(state["fisher"]))
            torch._foreach_copy_(self.anchors, list(state["anchors"]))
        self.tasks_consolidated = int(state["tasks_consolidated"])
        self.segment_start = int(state["segment_start"])
        self.samples_processed = int(state["samples_processed"])
        self.fisher_backward_passes = int(state["fisher_backward_passes"])


def build(config: RunConfig, context: MethodContext) -> OnlineEwc:
    m = config.method
    learner = build_learner(config, context.benchmark.input_vocab_size, context.device, context.precision, context.distributed)
    return OnlineEwc(learner, context.benchmark, context.device, lambda_=m.lambda_, decay=m.decay,
                     fisher_samples=m.fisher_samples, batch_size=config.train.batch_size)
