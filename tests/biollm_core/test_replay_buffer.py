"""Replay buffer: uniform reservoir sampling, memory formula, top-k teachers, sampling, checkpoints."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chi2

from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_sample import reservoir_slots

CAPACITY, STREAM, BINS = 100, 10_000, 100


def make(capacity: int = 8, seq_len: int = 3, vocab: int = 10, storage: str = "full", topk: int = 4,
         mask: bool = False, seed: int = 0) -> ReplayBuffer:
    return ReplayBuffer(
        capacity=capacity, seq_len=seq_len, vocab_size=vocab, top_k_experts=2, teacher_storage=storage,
        teacher_topk=topk, device=torch.device("cpu"), seed=seed, with_attention_mask=mask,
    )


def offer(buffer: ReplayBuffer, ids: torch.Tensor, teacher: torch.Tensor | None = None, step: int = 0) -> None:
    """Offer a batch whose item number is written into every input position."""
    B, T = ids.shape[0], buffer.tensors["input_ids"].shape[1]
    width = buffer.tensors["teacher"].shape[-1] if buffer.teacher_storage == "full" else 10
    buffer.add(
        input_ids=ids.view(B, 1).expand(B, T), labels=torch.zeros(B, T, dtype=torch.long),
        attention_mask=None, teacher_logits=teacher if teacher is not None else torch.zeros(B, T, width),
        task_id=0, step=step, experts=torch.zeros(B, 2, dtype=torch.long),
    )


def binned_chi_square(inclusions: torch.Tensor, repeats: int) -> float:
    """Chi-square of inclusion counts over BINS equal bins of the stream against the uniform expectation."""
    per_bin = inclusions.view(BINS, -1).sum(1)
    expected = repeats * CAPACITY / BINS
    return float(((per_bin - expected) ** 2 / expected).sum())


def run_stream(slots_of: object, repeats: int, batch: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    inclusions = torch.zeros(STREAM)
    for _ in range(repeats):
        content = torch.full((CAPACITY,), -1, dtype=torch.long)
        for start in range(0, STREAM, batch):
            for i, slot in slots_of(start, batch, CAPACITY, gen):
                content[slot] = start + i
        inclusions[content] += 1
    return inclusions


# Under uniform sampling each bin of 100 items holds on average repeats * 100 * 100 / 10_000 = repeats
# of the final samples. The sample is drawn without replacement, so bins are less variable than
# multinomial and the statistic is at most chi-square with BINS - 1 = 99 degrees of freedom. The bound
# (its 1 - 1e-6 quantile, about 174) makes a false alarm impossible in practice; the seed fixes the run.
# A per-item check would need ~10^4 repeats to resolve a single item's 1% inclusion rate.
LIMIT = chi2.ppf(1 - 1e-6, BINS - 1)


def test_reservoir_inclusion_is_uniform_over_a_long_stream() -> None:
    repeats = 200
    inclusions = run_stream(reservoir_slots, repeats, batch=STREAM)  # one call: the stream in one batch
    assert inclusions.sum().item() == repeats * CAPACITY
    assert binned_chi_square(inclusions, repeats) < LIMIT
    # the first items (which fill the buffer) and the last ones are kept as often as any: 1% each
    first, last = inclusions[:1000].sum() / (1000 * repeats), inclusions[-1000:].sum() / (1000 * repeats)
    assert first.item() == pytest.approx(CAPACITY / STREAM, rel=0.25)  # sd of each is about 7%
    assert last.item() == pytest.approx(CAPACITY / STREAM, rel=0.25)


def test_reservoir_in_batches_is_uniform_and_the_check_can_fail() -> None:
    repeats = 100
    inclusions = run_stream(reservoir_slots, repeats, batch=40)  # the stream in wake-sized batches
    assert binned_chi_square(inclusions, repeats) < LIMIT

    def always_replace(n_seen: int, batch: int, capacity: int, gen: torch.Generator) -> list[tuple[int, int]]:
        slots = torch.randint(0, capacity, (batch,), generator=gen).tolist()
        return [(i, n_seen + i if n_seen + i < capacity else s) for i, s in enumerate(slots)]

    biased = run_stream(always_replace, 20, batch=STREAM)  # favours recent items: the check must notice
    assert binned_chi_square(biased, 20) > LIMIT


def test_the_buffer_keeps_a_uniform_sample() -> None:
    repeats = 30
    inclusions = torch.zeros(STREAM)
    for seed in range(repeats):
        buffer = make(capacity=CAPACITY, seq_len=1, seed=seed)
        for start in range(0, STREAM, 250):
            offer(buffer, torch.arange(start, start + 250))
        assert len(buffer) == CAPACITY and buffer.n_seen == STREAM
        kept = buffer.tensors["input_ids"][:, 0].long()
        assert kept.unique().numel() == CAPACITY  # no item stored twice
        inclusions[kept] += 1
    assert binned_chi_square(inclusions, repeats) < LIMIT


def test_fills_in_order_before_capacity() -> None:
    buffer = make(capacity=8)
    offer(buffer, torch.arange(5))
    assert len(buffer) == 5
    assert buffer.tensors["input_ids"][:5, 0].tolist() == [0, 1, 2, 3, 4]
    assert buffer.tensors["steps"].tolist() == [0] * 5 + [-1] * 3


@pytest.mark.parametrize("mask", [False, True])
def test_nbytes_matches_the_formula(mask: bool) -> None:
    C, T, V, K = 8, 3, 10, 4
    base = C * T * 4 * 2 + C * 4 + C * 8 + C * 2 * 2 + (C * T if mask else 0)  # ids, labels, task, step, experts
    full = make(C, T, V, "full", K, mask)
    assert full.nbytes() == base + C * T * V * 2  # fp16 logits
    top = make(C, T, V, "topk", K, mask)
    assert top.nbytes() == base + C * T * K * 2 + C * T * K * 2  # fp16 values + int16 indices
    assert top.bytes_per_episode() == top.nbytes() // C


def test_topk_teacher_keeps_the_largest_logits_sorted() -> None:
    buffer = make(storage="topk", topk=3)
    teacher = torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(1))
    offer(buffer, torch.arange(2), teacher)
    values, indices = buffer.tensors["teacher"][:2].float(), buffer.tensors["teacher_indices"][:2].long()
    expected_values, expected_indices = teacher.topk(3, dim=-1)
    assert torch.equal(indices, expected_indices)
    torch.testing.assert_close(values, expected_values.half().float())
    assert (values[..., :-1] >= values[..., 1:]).all()  # sorted: entry 0 is the argmax
    torch.testing.assert_close(values, teacher.gather(-1, indices).half().float())


def test_full_teacher_is_stored_in_fp16() -> None:
    buffer = make()
    teacher = torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(2))
    offer(buffer, torch.arange(2), teacher)
    assert buffer.tensors["teacher"].dtype == torch.float16
    torch.testing.assert_close(buffer.tensors["teacher"][:2], teacher.half())


@pytest.mark.parametrize("storage", ["full", "topk"])
def test_sample_shapes(storage: str) -> None:
    buffer = make(storage=storage, mask=True)
    offer(buffer, torch.arange(6))
    sample = buffer.sample(4)
    width = 10 if storage == "full" else 4
    assert sample.input_ids.shape == (4, 3) and sample.input_ids.dtype == torch.long
    assert sample.labels.shape == (4, 3)
    assert sample.attention_mask.shape == (4, 3)
    assert sample.teacher.shape == (4, 3, width)
    assert sample.task_ids.shape == (4,)
    assert (sample.teacher_indices is None) == (storage == "full")
    assert sample.input_ids[:, 0].unique().numel() == 4  # without replacement when the buffer is big enough
    assert buffer.sample(20).input_ids.shape == (20, 3)  # with replacement when it is not


def test_recent_episodes_of_each_expert() -> None:
    buffer = make(capacity=8)
    for step, experts in enumerate([[0, 1], [0, 2], [1, 2], [0, 1]]):
        buffer.add(
            input_ids=torch.full((1, 3), step), labels=torch.zeros(1, 3, dtype=torch.long), attention_mask=None,
            teacher_logits=torch.zeros(1, 3, 10), task_id=0, step=step, experts=torch.tensor([experts]),
        )
    index, valid = buffer.recent_episodes_of(num_experts=4, per_expert=2)
    assert index.shape == (4, 2)
    assert index[0].tolist() == [3, 1] and valid[0].tolist() == [True, True]  # most recent first
    assert index[1].tolist() == [3, 2]
    assert index[2].tolist() == [2, 1]
    assert valid[3].tolist() == [False, False]  # expert 3 was never routed to


def test_state_dict_round_trip() -> None:
    buffer = make(storage="topk", mask=True)
    offer(buffer, torch.arange(12), torch.randn(12, 3, 10, generator=torch.Generator().manual_seed(3)))
    copy = make(storage="topk", mask=True, seed=99)
    copy.load_state_dict(buffer.state_dict())
    assert copy.n_seen == 12 and len(copy) == 8
    for name, tensor in buffer.tensors.items():
        assert torch.equal(copy.tensors[name], tensor), name
    a, b = buffer.sample(4), copy.sample(4)  # the generator travels too: the same draws follow
    assert torch.equal(a.input_ids, b.input_ids)
    assert torch.equal(a.teacher, b.teacher)


def test_a_sharded_reservoir_holds_samples_and_probes_what_one_process_does() -> None:
    """Two ranks of W = 2 (no process group needed: the buffer only reads rank and world size) fed the
    halves of the same global batches as one W = 1 buffer: every slot's episode is on exactly one rank
    and equals the single buffer's, samples split the single buffer's sample by holder, and a rank's
    storage grows past its initial share when the draws hand it more."""
    from biollm_core.distributed import Distributed

    def build(distributed: Distributed) -> ReplayBuffer:
        return ReplayBuffer(capacity=40, seq_len=3, vocab_size=10, top_k_experts=2, teacher_storage="topk", teacher_topk=2,
                            device=torch.device("cpu"), seed=5, with_attention_mask=False, distributed=distributed)

    single, ranks = build(Distributed()), [build(Distributed(r, 2)) for r in range(2)]
    gen = torch.Generator().manual_seed(1)
    for step in range(30):
        ids = torch.randint(0, 10, (8, 3), generator=gen)
        teacher, experts = torch.randn(8, 3, 10, generator=gen), torch.randint(0, 4, (8, 2), generator=gen)
        single.add(input_ids=ids, labels=ids, attention_mask=None, task_id=step % 2, step=step, teacher_logits=teacher,
                   experts=experts)
        for r, rank in enumerate(ranks):
            rows = slice(4 * r, 4 * r + 4)
            rank.add(input_ids=ids[rows], labels=ids[rows], attention_mask=None, task_id=step % 2, step=step,
                     teacher_logits=teacher[rows], experts=experts)
    slots = torch.arange(40)
    held = torch.stack([rank.held(slots) for rank in ranks])
    assert bool((held.sum(0) == 1).all())  # each slot on exactly one rank
    for rank in ranks:
        for name in ("steps", "experts", "task_ids"):  # every rank keeps every slot's records
            assert torch.equal(rank.tensors[name], single.tensors[name]), name
        mine = slots[rank.held(slots)]
        ours, theirs = rank.gather(mine), single.gather(mine)
        assert torch.equal(ours.input_ids, theirs.input_ids) and torch.equal(ours.teacher, theirs.teacher)
    assert sum(rank.shard.held() for rank in ranks) == 40
    whole = single.sample(16)
    parts = [rank.sample(16) for rank in ranks]
    order = torch.cat([p.positions for p in parts]).argsort()
    assert torch.equal(torch.cat([p.input_ids for p in parts])[order], whole.input_ids)
    assert torch.equal(single.recent_episodes_of(4, 3)[0], ranks[1].recent_episodes_of(4, 3)[0])
    assert single.nbytes() == ranks[0].nbytes()  # the whole buffer's bytes, at any W
    copy = build(Distributed(1, 2))
    copy.load_state_dict(ranks[1].state_dict())
    assert torch.equal(copy.sample(16).input_ids, ranks[1].sample(16).input_ids)


def test_float_feature_inputs_are_kept_as_they_are_and_survive_a_checkpoint() -> None:
    buffer = make(capacity=4, seq_len=1, storage="none")
    features = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))  # (B, D) float, one label position
    buffer.add(input_ids=features, labels=torch.arange(6).view(6, 1), attention_mask=None, task_id=1, step=3,
               experts=torch.zeros(6, 2, dtype=torch.long))
    stored = buffer.tensors["input_ids"]
    assert stored.shape == (4, 5) and stored.dtype == torch.float32
    assert buffer.nbytes() == 4 * 5 * 4 + 4 * 1 * 4 + 4 * 4 + 4 * 8 + 4 * 2 * 2  # features, labels, task, step, experts
    sample = buffer.gather(torch.arange(4))
    assert sample.input_ids.dtype == torch.float32
    for row, label in zip(sample.input_ids, sample.labels[:, 0].tolist(), strict=True):
        assert torch.equal(row, features[label])  # each episode's features with its own label, bit for bit
    fresh = make(capacity=4, seq_len=1, storage="none", seed=5)  # a resumed run's buffer starts in the token form
    fresh.load_state_dict(buffer.state_dict())
    assert torch.equal(fresh.tensors["input_ids"], stored)
    with pytest.raises(ValueError, match=r"holds inputs of shape \(5,\)"):
        buffer.add(input_ids=torch.zeros(2, 3, dtype=torch.long), labels=torch.zeros(2, 1, dtype=torch.long),
                   attention_mask=None, task_id=0, step=4, experts=torch.zeros(2, 2, dtype=torch.long))
