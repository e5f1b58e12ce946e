"""The toy continual benchmark (spec §7): per-position token maps, one map per task, with a task cue.

Inputs are uniform random ids in [0, V). Task 0 maps x -> (x+1) % V, task 1 -> (2x+3) % V, task 2 ->
(x XOR 31) % V, task 3 -> (x + x%7) % V; task k >= 4 repeats form k % 4 with shifted constants. With
``task_cue`` position 0 holds the reserved token ``V + task`` (an input-only embedding row, unsupervised).
"""

from __future__ import annotations

import torch

from biollm_core.protocols import Batch

_STREAM_TRAIN, _STREAM_HELDOUT = 1_000_003, 7_919


def task_map(x: torch.Tensor, task: int, vocab_size: int) -> torch.Tensor:
    """Targets of task ``task`` for token ids ``x`` (any shape)."""
    form, shift = task % 4, task // 4
    if form == 0:
        y = x + 1 + shift
    elif form == 1:
        y = 2 * x + 3 + shift
    elif form == 2:
        y = x ^ max(31 - shift, 1)
    else:
        y = x + x % (7 + shift)
    return y % vocab_size


class ToyBenchmark:
    """Implements ``ContinualBenchmark``."""

    def __init__(
        self,
        *,
        vocab_size: int,
        seq_len: int,
        num_tasks: int,
        switch_every: int,
        schedule: str,
        heldout_size: int,
        task_cue: bool,
        seed: int,
        total_steps: int | None = None,
    ) -> None:
        self.vocab_size, self.seq_len, self.num_tasks = vocab_size, seq_len, num_tasks
        self.switch_every, self.schedule, self.task_cue, self.seed = switch_every, schedule, task_cue, seed
        self.input_vocab_size = vocab_size + (num_tasks if task_cue else 0)
        self.total_steps = total_steps if total_steps is not None else num_tasks * switch_every
        self._heldout = [
            self._sample(task, heldout_size, self._generator(_STREAM_HELDOUT, task))
            for task in range(num_tasks)
        ]

    def task_at(self, step: int) -> int:
        segment = step // self.switch_every
        return segment % self.num_tasks if self.schedule == "cycle" else min(segment, self.num_tasks - 1)

    def segment_ends(self) -> list[int]:
        steps = range(self.total_steps)
        return [s for s in steps if s == self.total_steps - 1 or self.task_at(s + 1) != self.task_at(s)]

    def train_batch(self, step: int, batch_size: int) -> Batch:
        return self.task_batch(self.task_at(step), step, batch_size)

    def task_batch(self, task_id: int, index: int, batch_size: int) -> Batch:
        # The inputs depend on the index alone; every task maps them its own way.
        return self._sample(task_id, batch_size, self._generator(_STREAM_TRAIN, index))

    def train_size(self, batch_size: int) -> int:
        return self.total_steps * batch_size  # generated: every batch is new

    def heldout(self, task_id: int) -> Batch:
        return self._heldout[task_id]

    def _generator(self, stream: int, index: int) -> torch.Generator:
        # (seed + 1), not seed: with seed 0 both streams would reduce to index * 2_654_435_761, and training
        # step t would draw the inputs of task t's held-out set. The multiplier is prime and larger than any
        # practical seed, so the two streams of one seed never share a generator.
        return torch.Generator().manual_seed(((self.seed + 1) * stream + index * 2_654_435_761) % (2**63 - 1))

    def _sample(self, task: int, size: int, generator: torch.Generator) -> Batch:
        x = torch.randint(0, self.vocab_size, (size, self.seq_len), generator=generator)
        labels = task_map(x, task, self.vocab_size)
        if self.task_cue:
            x[:, 0] = self.vocab_size + task
            labels[:, 0] = -100
        return Batch(input_ids=x, labels=labels, task_id=task)
