"""The engine's extension points: neocortex backends, benchmarks and metrics sinks.

Structural typing only (``Protocol``): a backend, benchmark or sink never inherits an implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@dataclass(frozen=True)
class Batch:
    """One batch of a benchmark.

    ``input_ids`` holds token ids (B, T) long, or for a feature benchmark (the classification streams)
    one float feature vector per example, (B, D): the field keeps its name so every method, the replay
    buffer and the evaluation carry both forms the same way, and only the neocortex reads it.
    ``labels[b, l]`` is the target of ``logits[b, l]``, -100 marks an unsupervised position: for tokens
    l is the position (already shifted for next-token tasks); for a classifier l is an output head
    (one column, or one per task in task-incremental learning, where only the example's own task's
    head is supervised). ``attention_mask`` is None when there is no padding (always for features).
    """

    input_ids: torch.Tensor  # (B, T) long token ids, or (B, D) float features
    labels: torch.Tensor  # (B, L) long, -100 = ignored; L = T for tokens, the output heads for features
    task_id: int
    attention_mask: torch.Tensor | None = None  # (B, T) long/bool, 1 = real token

    def to(self, device: torch.device) -> Batch:
        mask = None if self.attention_mask is None else self.attention_mask.to(device, non_blocking=True)
        return Batch(self.input_ids.to(device, non_blocking=True), self.labels.to(device, non_blocking=True), self.task_id, mask)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def rows(self, index: slice) -> Batch:
        """The rows ``index`` of this batch (a data-parallel rank's shard), as views."""
        mask = None if self.attention_mask is None else self.attention_mask[index]
        return Batch(self.input_ids[index], self.labels[index], self.task_id, mask)

    def num_tokens(self) -> int:
        """Input tokens (B * T), or one per example for feature vectors: what ``tokens_per_s`` counts."""
        return len(self) if self.input_ids.is_floating_point() else self.input_ids.numel()


@runtime_checkable
class Neocortex(Protocol):
    """The slow model, split at the injection point.

    ``base(x) = decode(encode(x))``; ``combined(x) = decode(encode(x) + delta)``.
    """

    hidden_size: int  # H
    vocab_size: int  # V: logits are cut to the active vocabulary

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids -> (B, T, H) hidden state at the injection point; (B, D) features -> (B, 1, H)."""
        ...

    def decode(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, H) hidden -> (B, L, V) logits (the layers above the injection point and the head): L = T
        for a sequence model, the output heads (1, or one per task) for a classifier."""
        ...

    def consolidation_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The named parameters that sleep trains and EWC anchors (all, or a documented subset)."""
        ...


@runtime_checkable
class ContinualBenchmark(Protocol):
    """A stream of tasks presented one after another, each with a fixed held-out set."""

    num_tasks: int
    input_vocab_size: int  # embedding rows the neocortex needs (reserved cue tokens included)
    total_steps: int  # wake steps of one full pass over the stream

    def task_at(self, step: int) -> int:
        """Task id trained at wake step ``step`` (0-based)."""
        ...

    def segment_ends(self) -> list[int]:
        """0-based wake steps after which a task segment ends (the accuracy matrix's rows)."""
        ...

    def train_batch(self, step: int, batch_size: int) -> Batch:
        """The batch of training step ``step``: ``task_batch(task_at(step), step, batch_size)``."""
        ...

    def task_batch(self, task_id: int, index: int, batch_size: int) -> Batch:
        """Batch number ``index`` of task ``task_id``'s training stream: a pure function of (seed, task,
        index), so resume is exact; methods that draw from any task (joint, EWC's Fisher) use it."""
        ...

    def train_size(self, batch_size: int) -> int:
        """Training examples of the stream: a dataset's size, or what a generated stream draws in one pass."""
        ...

    def heldout(self, task_id: int) -> Batch:
        """Task ``task_id``'s held-out set, fixed before training."""
        ...


@runtime_checkable
class FeatureBenchmark(ContinualBenchmark, Protocol):
    """A benchmark of float feature vectors and class labels (``input_vocab_size`` is 0: no tokens).

    The classifier neocortex (``model.provider=mlp``) takes its input width and its output heads from it.
    """

    input_dim: int  # D: features per example
    num_classes: int  # V: logits per output head
    num_heads: int  # L: output heads (one per task in task-incremental learning, else 1)


@runtime_checkable
class MetricsSink(Protocol):
    """Where metrics leave the engine (JSONL here; the platform adds W&B, Ray reporting, progress bars)."""

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        """One record of per-step metrics (the keys of spec section 8)."""
        ...

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        """A checkpoint directory was written atomically at ``path``."""
        ...

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """The run's final summary (the contents of summary.json)."""
        ...

    def close(self) -> None: ...
