"""What the baselines that train the neocortex on labels share: the model, its optimizer, one step.

``finetune``, ``ewc``, ``lwf``, ``er``, ``derpp`` and ``joint`` each hold one ``NeocortexLearner``
(composition, not a base class) and write their own loss; this file owns the forward pass under the
precision policy, the optimizer step with AMP's grad scaler, and the accounting of what it trains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from biollm_core import builders
from biollm_core.config.schema import RunConfig
from biollm_core.device import Precision
from biollm_core.distributed import SINGLE, Distributed
from biollm_core.methods.protocol import StepOutput
from biollm_core.protocols import Neocortex
from biollm_core.wake import batch_figures


def label_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits, (B, T) labels -> mean cross-entropy over the supervised tokens (labels != -100)."""
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class NeocortexLearner:
    """The neocortex trained directly: AdamW over its consolidation parameters, AMP, step counting.

    Data parallel: a method's loss is this rank's share of the global batch's (``share``), and ``step``
    sums the gradients over ranks before anything else reads them."""

    def __init__(self, neocortex: Neocortex, *, lr: float, weight_decay: float, precision: Precision,
                 distributed: Distributed = SINGLE) -> None:
        self.neocortex = neocortex
        self.precision = precision
        self.distributed = distributed
        self.params = [p for _, p in neocortex.consolidation_parameters()]
        neocortex.requires_grad_(False)
        for p in self.params:
            p.requires_grad_(True)
        self.optimizer = builders.adamw(self.params, lr=lr, weight_decay=weight_decay)
        self.scaler = precision.grad_scaler()
        self.gradient_steps = 0

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T) ids -> (B, T, V) logits of the neocortex, with a graph when grad is enabled."""
        with self.precision.autocast():
            return self.neocortex.decode(self.neocortex.encode(input_ids, attention_mask), attention_mask)

    def step(self, loss: torch.Tensor, add_gradient: Callable[[], None] | None = None) -> None:
        """Backward ``loss``, sum the gradients over ranks, let ``add_gradient`` add an analytic term (the
        same on every rank, so added after the sum) to the unscaled ``.grad``s, step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.distributed.sum_gradients(self.params)
        if add_gradient is not None:
            self.scaler.unscale_(self.optimizer)
            add_gradient()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.gradient_steps += 1

    def share(self, term: torch.Tensor, rows: int, total: int | None = None) -> torch.Tensor:
        """A term averaged over this rank's ``rows`` as its part of the mean over ``total`` global rows
        (default: an equal shard of the stream's batch, ``rows * W``)."""
        return self.distributed.share(term, rows, rows * self.distributed.world_size if total is None else total)

    def figures(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        """The StepOutput of the global batch from this rank's ``loss`` (a mean over its tokens) and logits."""
        return StepOutput(*batch_figures(self.distributed, loss.detach(), logits.detach(), labels))

    def trainable_params(self) -> int:
        return sum(p.numel() for p in self.params)

    def state_dict(self) -> dict[str, Any]:
        return {"neocortex": self.neocortex.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "gradient_steps": self.gradient_steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.neocortex.load_state_dict(state["neocortex"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.gradient_steps = int(state["gradient_steps"])


def build_learner(config: RunConfig, input_vocab_size: int, device: torch.device, precision: Precision,
                  distributed: Distributed = SINGLE) -> NeocortexLearner:
    """The neocortex of ``config.model`` on ``device``, trained at ``train.lr``."""
    neocortex = builders.build_device_neocortex(config, input_vocab_size, device, precision)
    return NeocortexLearner(neocortex, lr=config.train.lr, weight_decay=config.train.weight_decay, precision=precision,
                            distributed=distributed)
