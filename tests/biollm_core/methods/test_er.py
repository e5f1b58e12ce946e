"""Experience replay's batch: the current batch, then an equal-size replayed one."""

from __future__ import annotations

import torch

from biollm_core.methods.er import with_replay
from biollm_core.protocols import Batch
from biollm_core.replay_buffer import ReplayBuffer


def test_current_batch_first_then_replayed_episodes() -> None:
    replay = ReplayBuffer(capacity=8, seq_len=3, vocab_size=10, top_k_experts=0, teacher_storage="none", teacher_topk=1,
                          device=torch.device("cpu"), seed=0, with_attention_mask=False)
    batch = Batch(torch.full((2, 3), 5), torch.full((2, 3), 6), task_id=0)
    ids, labels, mask = with_replay(batch, replay, 2)
    assert ids.shape == (2, 3) and mask is None  # nothing to replay yet
    replay.add(input_ids=torch.full((4, 3), 1), labels=torch.full((4, 3), 2), attention_mask=None, task_id=0, step=0)
    assert "teacher" not in replay.tensors  # ER keeps no logits
    ids, labels, _ = with_replay(batch, replay, 2)
    assert ids.shape == (4, 3) and (ids[:2] == 5).all() and (ids[2:] == 1).all() and (labels[2:] == 2).all()
