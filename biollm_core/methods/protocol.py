"""The one interface every continual method implements, and the records it hands the loop.

The loop (``biollm_core/runner.py``) makes three explicit calls per training step and knows no method
by name (in the spirit of mammoth's one ``observe()`` per method and torchtune's recipe protocol):

1. ``observe(batch, step)``: learn from the stream's batch (a wake step, a fine-tuning step, ...);
2. ``end_of_step(info)``: the method's own work at the end of the step (sleep and refresh when its
   scheduler says so, a Fisher or a frozen copy at a task switch), *before* the shared evaluation;
3. ``answering_models()``: what the shared evaluation protocol (spec §8) scores.

At the end of a run ``summary()`` gives the method's cost accounting (spec §10) and its own figures.
No implementation inheritance: a method is a plain class with these methods and the checkpoint pair
``state_dict`` / ``load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from biollm_core.hippocampus import Hippocampus
    from biollm_core.protocols import Batch, Neocortex


@dataclass
class StepOutput:
    """What one ``observe`` call learned. Device tensors: reading them is a host sync."""

    task_loss: torch.Tensor  # scalar: cross-entropy of the answering model on the stream's batch
    accuracy: torch.Tensor  # scalar: its token accuracy on that batch


@dataclass(frozen=True)
class StepInfo:
    """What the loop knows at the end of a training step, for the method's end-of-step work."""

    step: int  # training steps completed (1-based: the step just taken)
    task_id: int  # task of the step just taken
    segment_end: bool  # the step ends a task segment (the next step trains another task, or the run ends)
    forgetting_index: float  # the answering model's loss on earlier tasks above its best so far (last evaluation)
    evaluated_at: int | None  # step of the evaluation that index comes from (None before the first)


@dataclass(frozen=True)
class MethodSummary:
    """Memory and compute of a method (spec §10), for a fair comparison, and its own end-of-run figures."""

    memory_episodes: int  # episodes the method keeps (replay buffer; the training stream for joint)
    memory_bytes: int  # bytes of everything kept beyond the model itself (buffer, Fisher and anchor, model copy)
    trainable_params: int  # parameters that receive updates
    gradient_steps: int  # optimizer steps so far (wake + sleep)
    samples_processed: int  # examples through a training forward pass so far (current + replayed + pseudo)
    figures: Mapping[str, Any] = field(default_factory=dict)  # the method's own (cls: sleeps, refreshes)

    def as_dict(self) -> dict[str, Any]:
        """The flat form summary.json holds: cost fields, then the method's figures."""
        names = ("memory_episodes", "memory_bytes", "trainable_params", "gradient_steps", "samples_processed")
        return {**{name: getattr(self, name) for name in names}, **self.figures}


@runtime_checkable
class ContinualMethod(Protocol):
    def observe(self, batch: Batch, step: int) -> StepOutput:
        """Learn from the stream's batch of training step ``step`` (0-based)."""
        ...

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        """The method's own work after the step; returns its per-step metrics (values may be tensors)."""
        ...

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        """(neocortex, hippocampus or None): the combined model answers, the neocortex alone is the base."""
        ...

    def summary(self) -> MethodSummary:
        """Cost accounting so far and the method's own figures (for summary.json)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint must hold for an exact resume (modules, optimizers, buffers, RNG)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...
