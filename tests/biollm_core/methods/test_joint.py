"""Joint training's i.i.d. batches over every task."""

from __future__ import annotations

from biollm_core.benchmarks.toy import ToyBenchmark
from biollm_core.methods.joint import iid_batch


def bench() -> ToyBenchmark:
    return ToyBenchmark(vocab_size=64, seq_len=8, num_tasks=4, switch_every=10, schedule="sequential",
                        heldout_size=4, task_cue=True, seed=7)


def test_batches_mix_every_task_and_are_a_function_of_the_step() -> None:
    b = bench()
    first = iid_batch(b, 0, 256, seed=7)
    assert first.input_ids.shape == (256, 8) and first.task_id == -1
    cues = set((first.input_ids[:, 0] - 64).tolist())  # position 0 is the task cue V + task
    assert cues == {0, 1, 2, 3}  # every task drawn, also at step 0 (the stream itself is on task 0)
    again = iid_batch(b, 0, 256, seed=7)
    assert (again.input_ids == first.input_ids).all() and (again.labels == first.labels).all()
    assert not (iid_batch(b, 1, 256, seed=7).input_ids == first.input_ids).all()
