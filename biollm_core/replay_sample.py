"""What a replay draw returns (``ReplaySample``) and where a batch's episodes go (``reservoir_slots``,
Algorithm R in batches): the pieces of the replay buffer (``replay_buffer.py``) that hold no state."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import torch


@dataclass
class ReplaySample:
    input_ids: torch.Tensor  # (B, T) long token ids, or (B, D) float features
    labels: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor | None  # (B, T) bool
    teacher: torch.Tensor | None  # (B, T, V) or (B, T, K) logits; None when the buffer keeps no teachers
    teacher_indices: torch.Tensor | None  # (B, T, K) vocabulary ids of a top-k teacher
    task_ids: torch.Tensor  # (B,)
    _: KW_ONLY  # the optional fields by name only: a positional one would land in the wrong field
    slots: torch.Tensor | None = None  # (B,) the buffer slots gathered (None for a batch built elsewhere)
    base_targets: torch.Tensor | None = None  # (B,) cached neocortex-only gate targets, NaN = stale (see ReplayBuffer)
    positions: torch.Tensor | None = None  # (B,) places of these rows in a sample drawn across ranks (None: all of it)
    sample_slots: torch.Tensor | None = None  # (N,) every slot of the whole draw, all ranks' rows (``sample_even``; else None)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def leading(self, count: int) -> int:
        """How many of these rows are among the sample's first ``count`` (they lead it, in order)."""
        if self.positions is None:
            return min(count, len(self))
        return int((self.positions < count).sum())


def reservoir_slots(n_seen: int, batch: int, capacity: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """(element index in batch, slot) pairs for ``batch`` new items after ``n_seen`` seen so far.

    Algorithm R: item number n (0-based) goes to slot n while the buffer fills, then to slot j ~ U{0..n}
    if j < capacity. A later element overwriting the same slot wins, as in the sequential algorithm.
    """
    draws = torch.rand(batch, generator=generator, dtype=torch.float64).tolist()
    chosen: dict[int, int] = {}
    for i, u in enumerate(draws):
        n = n_seen + i
        slot = n if n < capacity else int(u * (n + 1))
        if slot < capacity:
            chosen[slot] = i
    return [(i, slot) for slot, i in chosen.items()]
