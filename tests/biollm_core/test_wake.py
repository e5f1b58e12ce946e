"""The wake step (spec §3): only the hippocampus learns, through the frozen neocortex; episodes are stored."""

from __future__ import annotations

import pytest
import torch

from biollm_core.benchmarks.toy import ToyBenchmark
from biollm_core.device import Precision
from biollm_core.gate_supervision import gate_targets
from biollm_core.hippocampus import Hippocampus
from biollm_core.models.tiny_transformer import TinyTransformer
from biollm_core.protocols import Batch
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.wake import reward_scale, token_accuracy, wake_step

V, T, H, B = 16, 6, 16, 8
CPU = Precision(device=torch.device("cpu"))


def parts(storage: str = "full") -> tuple[TinyTransformer, Hippocampus, torch.optim.Optimizer, ReplayBuffer, Batch]:
    torch.manual_seed(0)
    bench = ToyBenchmark(vocab_size=V, seq_len=T, num_tasks=2, switch_every=10, schedule="sequential",
                         heldout_size=4, task_cue=True, seed=0)
    model = TinyTransformer(vocab_size=V, input_vocab_size=bench.input_vocab_size, hidden_size=H, num_layers=2,
                            num_heads=2, mlp_ratio=2, max_seq_len=T, injection_layer=1).requires_grad_(False)
    hip = Hippocampus(hidden_size=H, num_experts=4, expert_hidden=16, top_k=2, routing="sequence", init_scale=1e-3,
                      utilization_bonus=0.1, capacity_penalty=0.1, seed=1)
    optimizer = torch.optim.AdamW(hip.parameters(), lr=1e-2)
    replay = ReplayBuffer(capacity=64, seq_len=T, vocab_size=V, top_k_experts=2, teacher_storage=storage,
                          teacher_topk=4, device=torch.device("cpu"), seed=2, with_attention_mask=False)
    return model, hip, optimizer, replay, bench.train_batch(3, B)


def step(model: TinyTransformer, hip: Hippocampus | None, optimizer: torch.optim.Optimizer | None,
         replay: ReplayBuffer, batch: Batch, index: int = 3, **kwargs: object) -> object:
    settings = {"reward_alpha": 0.5, "reward_from_correctness": True, "routing_reg_weight": 0.01, **kwargs}
    return wake_step(model, hip, optimizer, CPU.grad_scaler(), replay, batch, index, CPU, **settings)


def combined(model: TinyTransformer, hip: Hippocampus, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        hidden = model.encode(x)
        return model.decode(hidden + hip(hidden).delta)


def test_one_step_trains_only_the_hippocampus_and_stores_the_batch() -> None:
    model, hip, optimizer, replay, batch = parts()
    neocortex_before = {n: p.clone() for n, p in model.named_parameters()}
    hip_before = {n: p.detach().clone() for n, p in hip.named_parameters()}
    result = step(model, hip, optimizer, replay, batch)
    for name, p in model.named_parameters():
        assert torch.equal(p, neocortex_before[name]), name
        assert p.grad is None  # no graph was built through the frozen neocortex's parameters
    changed = [n for n, p in hip.named_parameters() if not torch.equal(p, hip_before[n])]
    assert {"w1", "w2", "router.weight"} <= set(changed)
    assert len(replay) == B and replay.n_seen == B
    assert torch.equal(replay.tensors["input_ids"][:B].long(), batch.input_ids)
    assert torch.equal(replay.tensors["labels"][:B].long(), batch.labels)
    assert (replay.tensors["task_ids"][:B] == batch.task_id).all() and (replay.tensors["steps"][:B] == 3).all()
    assert ((replay.tensors["experts"][:B] >= 0) & (replay.tensors["experts"][:B] < 4)).all()
    assert hip.counts.sum() == B * 2  # every sequence routed to top-2 experts
    assert result.task_loss.ndim == 0 and 0.0 <= result.accuracy.item() <= 1.0
    assert result.novelty.item() == 1.0  # the first step's experts are all new


def test_teacher_is_the_combined_model_after_the_step() -> None:
    model, hip, optimizer, replay, batch = parts()
    step(model, hip, optimizer, replay, batch)
    after = combined(model, hip, batch.input_ids)
    # fp16 storage: relative error about 5e-4 on logits of order 1
    torch.testing.assert_close(replay.tensors["teacher"][:B].float(), after, rtol=2e-3, atol=2e-3)


def test_topk_teacher_is_the_top_of_the_combined_model_after_the_step() -> None:
    model, hip, optimizer, replay, batch = parts("topk")
    step(model, hip, optimizer, replay, batch)
    values, indices = combined(model, hip, batch.input_ids).topk(4, dim=-1)
    torch.testing.assert_close(replay.tensors["teacher"][:B].float(), values, rtol=2e-3, atol=2e-3)
    agree = (replay.tensors["teacher_indices"][:B, :, 0].long() == indices[..., 0]).float().mean()
    assert agree > 0.95  # top-1 ties within fp16 rounding aside, the same argmax


def test_the_task_loss_falls_through_the_frozen_decoder() -> None:
    model, hip, optimizer, replay, batch = parts()
    with torch.no_grad():  # a random head of std 0.02 caps the logits near 0.3: give the decoder some range
        model.head.weight.mul_(50)
    first = step(model, hip, optimizer, replay, batch).task_loss.item()
    for i in range(20):
        last = step(model, hip, optimizer, replay, batch, index=4 + i).task_loss.item()
    assert last < 0.5 * first  # measured about 0.33; only the delta can have lowered it: the neocortex never moved


def test_no_hippocampus_ablation_stores_base_teachers() -> None:
    model, _, _, replay, batch = parts()
    result = step(model, None, None, replay, batch)
    with torch.no_grad():
        base = model(batch.input_ids)
    assert len(replay) == B
    torch.testing.assert_close(replay.tensors["teacher"][:B].float(), base, rtol=2e-3, atol=2e-3)
    assert (replay.tensors["experts"][:B] == -1).all()
    assert result.novelty.item() == 0.0


def test_base_optimizer_trains_the_neocortex_too() -> None:
    model, hip, optimizer, replay, batch = parts()
    model.requires_grad_(True)
    base_optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = model.token_embedding.weight.clone()
    step(model, hip, optimizer, replay, batch, base_optimizer=base_optimizer)
    assert not torch.equal(model.token_embedding.weight, before)
    after = combined(model, hip, batch.input_ids)  # the teacher is re-encoded by the updated neocortex
    torch.testing.assert_close(replay.tensors["teacher"][:B].float(), after, rtol=2e-3, atol=2e-3)


def test_token_accuracy_hand_value() -> None:
    logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])  # argmax 1, 0, 1
    labels = torch.tensor([[1, 1, -100]])
    assert token_accuracy(logits, labels).item() == pytest.approx(0.5)  # 1 of 2 supervised tokens


def test_reward_scale_hand_values() -> None:
    assert reward_scale(torch.tensor(1.0), 0.5).item() == pytest.approx(1.5)  # 1 + 0.5 * (2 - 1)
    assert reward_scale(torch.tensor(0.0), 0.5).item() == pytest.approx(0.5)  # 1 + 0.5 * -1
    assert reward_scale(torch.tensor(1.0), 3.0).item() == 2.0  # clipped above
    assert reward_scale(torch.tensor(0.0), 3.0).item() == 0.25  # clipped below


def test_do_no_harm_replays_episodes_in_the_same_step_and_only_the_batch_is_stored() -> None:
    model, hip, optimizer, replay, batch = parts()
    step(model, hip, optimizer, replay, batch)  # fills the buffer with B episodes
    clone = {n: p.detach().clone() for n, p in hip.named_parameters()}
    alone = Hippocampus(hidden_size=H, num_experts=4, expert_hidden=16, top_k=2, routing="sequence", init_scale=1e-3,
                        utilization_bonus=0.1, capacity_penalty=0.1, seed=1)
    alone.load_state_dict(hip.state_dict())
    other = torch.optim.AdamW(alone.parameters(), lr=1e-2)
    other.load_state_dict(optimizer.state_dict())
    twin = ReplayBuffer(capacity=64, seq_len=T, vocab_size=V, top_k_experts=2, teacher_storage="full", teacher_topk=4,
                        device=torch.device("cpu"), seed=2, with_attention_mask=False)
    twin.load_state_dict(replay.state_dict())
    step(model, hip, optimizer, replay, batch, index=4, harm_batch_size=4, harm_weight=1.0)
    step(model, alone, other, twin, batch, index=4)  # the same step without the replayed episodes
    moved = [n for n, p in hip.named_parameters() if not torch.equal(p, dict(alone.named_parameters())[n])]
    assert moved and all(not torch.equal(dict(hip.named_parameters())[n], clone[n]) for n in moved)  # the term changed the update
    assert len(replay) == 2 * B  # only the stream's batch was added


def test_teacher_of_the_step_itself_skips_the_second_decode() -> None:
    model, hip, optimizer, replay, batch = parts()
    x = batch.input_ids
    before = combined(model, hip, x)  # the step's own (pre-update) logits
    step(model, hip, optimizer, replay, batch, teacher_after_step=False)
    torch.testing.assert_close(replay.tensors["teacher"][:B].float(), before.half().float())


def test_supervised_gate_closes_on_what_the_neocortex_answers_and_opens_on_the_new() -> None:
    """Replayed episodes the neocortex answers pull the gate shut; the stream's batch it gets wrong opens it.
    The two kinds of input use disjoint halves of the vocabulary, so a per-token gate can tell them apart."""
    model, _, _, _, _ = parts()
    hip = Hippocampus(hidden_size=H, num_experts=4, expert_hidden=16, top_k=2, routing="token", init_scale=1e-3,
                      utilization_bonus=0.1, capacity_penalty=0.1, seed=1, gate=True)
    optimizer = torch.optim.AdamW(hip.parameters(), lr=1e-2)
    replay = ReplayBuffer(capacity=1024, seq_len=T, vocab_size=V, top_k_experts=2, teacher_storage="full", teacher_topk=4,
                          device=torch.device("cpu"), seed=2, with_attention_mask=False)
    g = torch.Generator().manual_seed(3)
    known = torch.randint(0, V // 2, (512, T), generator=g)
    new = torch.randint(V // 2, V, (B, T), generator=g)
    with torch.no_grad():  # known: labelled with the neocortex's own answers; new: labels it gets wrong
        answers = model.decode(model.encode(known)).argmax(-1)
        wrong = (model.decode(model.encode(new)).argmax(-1) + 1) % V
    replay.add(input_ids=known, labels=answers, attention_mask=None, teacher_logits=torch.zeros(512, T, V), task_id=0,
               step=0, experts=torch.zeros(512, 2, dtype=torch.long))
    batch = Batch(input_ids=new, labels=wrong, task_id=1)
    initial = {k: v.clone() for k, v in hip.state_dict().items()}
    gates = {}
    for weight in (1.0, 0.0):  # the gate's BCE alone (no harm CE), then without it: the batch's loss only opens it
        hip.load_state_dict(initial)
        optimizer = torch.optim.AdamW(hip.parameters(), lr=1e-2)
        for index in range(150):
            step(model, hip, optimizer, replay, batch, index=index, harm_batch_size=8, harm_weight=0.0, gate_weight=weight)
        with torch.no_grad():
            gates[weight] = (torch.sigmoid(hip(model.encode(known)).gate_logits).mean(),
                             torch.sigmoid(hip(model.encode(new)).gate_logits).mean())
    (closed, opened), (unsupervised, _) = gates[1.0], gates[0.0]
    assert closed < 0.4 < 0.6 < unsupervised and opened > 0.8, gates  # measured: 0.35, 0.67, 0.92


def _gated_parts(cache: bool) -> tuple[TinyTransformer, Hippocampus, torch.optim.Optimizer, ReplayBuffer]:
    model, _, _, _, _ = parts()
    hip = Hippocampus(hidden_size=H, num_experts=4, expert_hidden=16, top_k=2, routing="token", init_scale=1e-3,
                      utilization_bonus=0.1, capacity_penalty=0.1, seed=1, gate=True)
    replay = ReplayBuffer(capacity=64, seq_len=T, vocab_size=V, top_k_experts=2, teacher_storage="full", teacher_topk=4,
                          device=torch.device("cpu"), seed=2, with_attention_mask=False, base_targets=cache)
    return model, hip, torch.optim.AdamW(hip.parameters(), lr=1e-2), replay


def test_cached_gate_targets_give_the_slow_paths_loss_and_gradients() -> None:
    """The neocortex is frozen awake, so a replayed episode's gate target may be cached: the steps (losses,
    gradients, updates) are those of decoding every replayed episode again, cached or stale."""
    bench = ToyBenchmark(vocab_size=V, seq_len=T, num_tasks=2, switch_every=10, schedule="sequential",
                         heldout_size=4, task_cue=True, seed=0)
    runs = {cache: _gated_parts(cache) for cache in (False, True)}
    g = torch.Generator().manual_seed(5)
    stale = torch.randint(0, V, (16, T), generator=g)  # stored without a target (as after a sleep): decoded when replayed
    for *_, replay in runs.values():
        replay.add(input_ids=stale, labels=torch.randint(0, V, (16, T), generator=g.manual_seed(6)), attention_mask=None,
                   teacher_logits=torch.zeros(16, T, V), task_id=0, step=0, experts=torch.zeros(16, 2, dtype=torch.long))
    for index in range(6):
        batch = bench.train_batch(index, B)
        results = {c: step(m, h, o, r, batch, index=index, harm_batch_size=12, harm_weight=1.0, gate_weight=1.0)
                   for c, (m, h, o, r) in runs.items()}
        torch.testing.assert_close(results[True].task_loss, results[False].task_loss, rtol=0, atol=0)
        (_, slow, _, _), (_, fast, _, cached) = runs[False], runs[True]
        for (name, p), q in zip(slow.named_parameters(), fast.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=0, msg=name)
    targets = cached.tensors["base_targets"][: len(cached)]
    assert targets.isnan().sum() < 16 and (~targets.isnan()).sum() > 6 * B  # the batches' and replayed stale ones
    model = runs[True][0]
    with torch.no_grad():
        fresh = gate_targets(model.decode(model.encode(cached.tensors["input_ids"][: len(cached)].long())),
                             cached.tensors["labels"][: len(cached)].long())
    known = ~targets.isnan()
    torch.testing.assert_close(targets[known], fresh[known])


def test_a_base_optimizer_bypasses_the_cache() -> None:
    """A neocortex trained awake changes every step: no gate target is reused or stored."""
    model, hip, optimizer, replay = _gated_parts(True)
    model.requires_grad_(True)
    base = torch.optim.AdamW(model.parameters(), lr=1e-3)
    bench = ToyBenchmark(vocab_size=V, seq_len=T, num_tasks=2, switch_every=10, schedule="sequential",
                         heldout_size=4, task_cue=True, seed=0)
    for index in range(3):
        step(model, hip, optimizer, replay, bench.train_batch(index, B), index=index, base_optimizer=base,
             harm_batch_size=4, harm_weight=1.0, gate_weight=1.0)
    assert replay.tensors["base_targets"][: len(replay)].isnan().all()


def test_gate_off_the_batch_supervises_the_replayed_episodes_only() -> None:
    """wake.gate_on_batch=false: without replayed episodes the step is that of an unsupervised gate; with
    them the BCE is theirs, and the batch is stored with a stale target (decoded once it is replayed)."""
    bench = ToyBenchmark(vocab_size=V, seq_len=T, num_tasks=2, switch_every=10, schedule="sequential",
                         heldout_size=4, task_cue=True, seed=0)
    batch = bench.train_batch(0, B)
    grads = {}
    for label, kwargs in {"off batch": {"gate_weight": 1.0, "gate_on_batch": False}, "no bce": {"gate_weight": 0.0}}.items():
        model, hip, optimizer, replay = _gated_parts(True)
        step(model, hip, optimizer, replay, batch, index=0, harm_batch_size=4, harm_weight=1.0, **kwargs)  # empty buffer
        grads[label] = [p.grad.clone() for p in hip.parameters()]
    for got, want in zip(grads["off batch"], grads["no bce"], strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert replay.tensors["base_targets"][:B].isnan().all()
    model, hip, optimizer, replay = _gated_parts(True)
    step(model, hip, optimizer, replay, batch, index=0, gate_weight=1.0, gate_on_batch=False)
    step(model, hip, optimizer, replay, bench.train_batch(1, B), index=1, harm_batch_size=4, harm_weight=1.0,
         gate_weight=1.0, gate_on_batch=False)
    assert (~replay.tensors["base_targets"][:B].isnan()).sum() > 0  # the replayed ones were decoded and cached
    assert replay.tensors["base_targets"][B : 2 * B].isnan().all()
