"""The slot map of a data-parallel replay shard: rows handed out, freed, reused, and grown."""

from __future__ import annotations

import torch

from biollm_core.distributed import Distributed
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_shard import ShardMap, initial_rows


def test_rows_are_handed_out_freed_and_reused() -> None:
    shard = ShardMap(capacity=6, rows=2)
    assert [shard.assign(4, True), shard.assign(1, True)] == [0, 1]
    assert shard.assign(4, True) == 0  # the same slot overwritten by this rank: same row
    assert shard.assign(2, True) == -1  # no row free: the caller grows
    assert shard.assign(1, False) is None and shard.row_of[1] == -1  # another rank took slot 1
    assert shard.assign(2, True) == 1 and shard.held() == 2
    shard.grow(4)
    assert shard.assign(5, True) == 2 and shard.rows == 4
    assert ShardMap.from_state(6, shard.state_dict()) == shard


def test_initial_rows_cover_the_share_and_its_spread() -> None:
    assert initial_rows(4096, 1) == 4096
    assert 2048 < initial_rows(4096, 2) < 2400 and initial_rows(16, 2) == 16  # never above the capacity


def test_the_buffer_grows_its_rows_and_keeps_what_they_held() -> None:
    buffer = ReplayBuffer(capacity=400, seq_len=2, vocab_size=5, top_k_experts=1, teacher_storage="full", teacher_topk=5,
                          device=torch.device("cpu"), seed=0, with_attention_mask=False, distributed=Distributed(0, 2))
    ids = torch.arange(8).view(4, 2)
    buffer.add(input_ids=ids, labels=ids, attention_mask=None, task_id=0, step=0, teacher_logits=torch.zeros(4, 2, 5),
               experts=torch.zeros(8, 1, dtype=torch.long))
    rows = buffer.shard.rows
    before = buffer.gather(torch.arange(8)).input_ids
    buffer._grow()
    assert buffer.shard.rows > rows and buffer.tensors["teacher"].shape[0] == buffer.shard.rows
    assert torch.equal(buffer.gather(torch.arange(8)).input_ids, before) and torch.equal(before, ids)
