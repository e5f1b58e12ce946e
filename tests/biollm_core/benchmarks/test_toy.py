"""The toy benchmark (spec §7): task maps, the task cue, determinism, segments and schedules."""

from __future__ import annotations

import pytest
import torch

from biollm_core.benchmarks.toy import ToyBenchmark, task_map
from biollm_core.protocols import ContinualBenchmark


def make(**kwargs: object) -> ToyBenchmark:
    settings = {"vocab_size": 64, "seq_len": 16, "num_tasks": 4, "switch_every": 10, "schedule": "sequential",
                "heldout_size": 32, "task_cue": True, "seed": 7, **kwargs}
    return ToyBenchmark(**settings)


def test_task_maps_hand_values() -> None:
    x = torch.tensor([5])
    assert task_map(x, 0, 64).item() == 6  # (5 + 1) % 64
    assert task_map(x, 1, 64).item() == 13  # (2 * 5 + 3) % 64
    assert task_map(x, 2, 64).item() == 26  # 5 XOR 31 = 0b00101 ^ 0b11111 = 0b11010
    assert task_map(x, 3, 64).item() == 10  # 5 + 5 % 7
    assert task_map(torch.tensor([63]), 0, 64).item() == 0  # wraps around the vocabulary
    assert task_map(torch.tensor([40]), 1, 64).item() == 19  # 83 % 64


def test_task_maps_stay_in_vocab_and_differ() -> None:
    x = torch.arange(64)
    maps = [task_map(x, task, 64) for task in range(8)]
    for y in maps:
        assert y.min() >= 0 and y.max() < 64
    for a in range(8):
        for b in range(a + 1, 8):
            assert not torch.equal(maps[a], maps[b]), (a, b)


def test_cue_token_at_position_zero() -> None:
    bench = make()
    assert isinstance(bench, ContinualBenchmark)
    assert bench.input_vocab_size == 68
    for step in (0, 15, 39):
        batch = bench.train_batch(step, 8)
        task = bench.task_at(step)
        assert batch.task_id == task
        assert (batch.input_ids[:, 0] == 64 + task).all()  # a reserved id beyond vocab_size
        assert (batch.labels[:, 0] == -100).all()  # never a target
        assert torch.equal(batch.labels[:, 1:], task_map(batch.input_ids[:, 1:], task, 64))
        assert batch.input_ids[:, 1:].max() < 64
    heldout = bench.heldout(2)
    assert len(heldout) == 32 and (heldout.input_ids[:, 0] == 66).all()


def test_without_cue_every_position_is_supervised() -> None:
    bench = make(task_cue=False)
    batch = bench.train_batch(0, 4)
    assert bench.input_vocab_size == 64
    assert torch.equal(batch.labels, task_map(batch.input_ids, 0, 64))


def test_train_batch_is_a_function_of_seed_and_step() -> None:
    a, b = make(), make()
    assert torch.equal(a.train_batch(3, 8).input_ids, b.train_batch(3, 8).input_ids)
    b.train_batch(0, 8)  # what was drawn before must not matter
    assert torch.equal(a.train_batch(5, 8).input_ids, b.train_batch(5, 8).input_ids)
    assert not torch.equal(a.train_batch(3, 8).input_ids, a.train_batch(4, 8).input_ids)
    assert not torch.equal(a.train_batch(3, 8).input_ids, make(seed=8).train_batch(3, 8).input_ids)
    assert torch.equal(a.heldout(1).input_ids, b.heldout(1).input_ids)


@pytest.mark.parametrize("seed", [0, 7])
def test_heldout_sets_never_appear_in_training(seed: int) -> None:
    bench = make(seed=seed, task_cue=False)
    heldout = {tuple(row) for task in range(4) for row in bench.heldout(task).input_ids.tolist()}
    trained = {tuple(row) for step in range(40) for row in bench.train_batch(step, 32).input_ids.tolist()}
    # 64^16 possible sequences: a chance collision is impossible; a shared generator is not
    assert not heldout & trained


def test_sequential_segments() -> None:
    bench = make()
    assert [bench.task_at(s) for s in (0, 9, 10, 29, 39, 45)] == [0, 0, 1, 2, 3, 3]
    assert bench.segment_ends() == [9, 19, 29, 39]
    assert bench.total_steps == 40


def test_cycle_schedule_recurs() -> None:
    bench = make(schedule="cycle", num_tasks=2, switch_every=3, total_steps=10)
    assert [bench.task_at(s) for s in range(10)] == [0, 0, 0, 1, 1, 1, 0, 0, 0, 1]
    assert bench.segment_ends() == [2, 5, 8, 9]


def test_sequential_run_longer_than_the_stream_stays_on_the_last_task() -> None:
    bench = make(total_steps=50)
    assert bench.task_at(49) == 3
    assert bench.segment_ends() == [9, 19, 29, 49]
