"""Expert refresh (spec §6): reset an expert the neocortex absorbed, spare one it did not."""

from __future__ import annotations

import math

import pytest
import torch

from biollm_core.hippocampus import Hippocampus
from biollm_core.models.tiny_transformer import TinyTransformer
from biollm_core.refresh import expert_agreement, probe_agreement, probe_counts, refresh_experts
from biollm_core.replay_buffer import ReplayBuffer

V, T, H = 16, 6, 16
NAMES = ("w1", "b1", "w2", "b2")


def setup(storage: str) -> tuple[TinyTransformer, Hippocampus, torch.optim.Optimizer, ReplayBuffer]:
    """Expert 0's episodes are labelled with the base model's own argmax (agreement 1); expert 1's with
    another token (agreement 0), though their stored teacher is the base model itself: the labels are the
    target, never the teacher (spec §6). Both experts have moved from init."""
    torch.manual_seed(0)
    model = TinyTransformer(vocab_size=V, input_vocab_size=V, hidden_size=H, num_layers=2, num_heads=2,
                            mlp_ratio=2, max_seq_len=T, injection_layer=1).requires_grad_(False)
    hip = Hippocampus(hidden_size=H, num_experts=2, expert_hidden=8, top_k=1, routing="sequence", init_scale=0.1,
                      utilization_bonus=0.1, capacity_penalty=0.1, seed=0)
    optimizer = torch.optim.AdamW(hip.parameters(), lr=1e-2)
    hip(torch.randn(4, T, H)).delta.pow(2).sum().backward()
    with torch.no_grad():  # every expert trained: moments exist and weights left init
        hip.w1.grad.normal_(), hip.w2.grad.normal_(), hip.b1.grad.normal_(), hip.b2.grad.normal_()
    optimizer.step()
    hip.record_routing(torch.tensor([[0], [1], [1]]))
    hip.update_drift()
    replay = ReplayBuffer(capacity=16, seq_len=T, vocab_size=V, top_k_experts=1, teacher_storage=storage,
                          teacher_topk=4, device=torch.device("cpu"), seed=0, with_attention_mask=False)
    gen = torch.Generator().manual_seed(1)
    for step, expert in enumerate([0, 1, 0, 1]):
        ids = torch.randint(0, V, (2, T), generator=gen)
        with torch.no_grad():
            base = model(ids)
        labels = base.argmax(-1) if expert == 0 else (base.argmax(-1) + 1) % V
        labels[:, 0] = -100
        replay.add(input_ids=ids, labels=labels, attention_mask=None, teacher_logits=base, task_id=0, step=step,
                   experts=torch.full((2, 1), expert))
    return model, hip, optimizer, replay


def snapshot(hip: Hippocampus) -> dict[str, torch.Tensor]:
    return {name: getattr(hip, name).detach().clone() for name in NAMES}


def refresh(model: TinyTransformer, hip: Hippocampus, optimizer: torch.optim.Optimizer, replay: ReplayBuffer,
            policy: str) -> object:
    return refresh_experts(model, hip, optimizer, replay, policy=policy, probe_episodes=8, agreement_threshold=0.95,
                           reset_factor=0.0)


@pytest.mark.parametrize("storage", ["full", "topk"])
def test_absorbed_expert_is_reset_and_the_other_kept(storage: str) -> None:
    model, hip, optimizer, replay = setup(storage)
    before = snapshot(hip)
    for name in NAMES:
        assert not torch.equal(before[name], getattr(hip, f"{name}_init"))
    result = refresh(model, hip, optimizer, replay, "absorbed")
    assert result.refreshed == 1
    assert result.mean_agreement == pytest.approx(0.5)  # expert 0 agrees on every token, expert 1 on none
    for name in NAMES:
        torch.testing.assert_close(getattr(hip, name)[0], getattr(hip, f"{name}_init")[0])  # fresh expert 0
        assert torch.equal(getattr(hip, name)[1], before[name][1])  # expert 1 untouched
    assert hip.counts.tolist() == [0.0, 2.0]
    state = optimizer.state[hip.w1]
    assert state["exp_avg"][0].abs().sum() == 0 and state["exp_avg_sq"][0].abs().sum() == 0
    assert state["exp_avg"][1].abs().sum() > 0  # the spared expert keeps its momentum


def test_policy_all_resets_every_expert() -> None:
    model, hip, optimizer, replay = setup("full")
    result = refresh(model, hip, optimizer, replay, "all")
    assert result.refreshed == 2 and math.isnan(result.mean_agreement)
    for name in NAMES:
        torch.testing.assert_close(getattr(hip, name), getattr(hip, f"{name}_init"))
    assert hip.counts.tolist() == [0.0, 0.0]


def test_policy_off_resets_nothing() -> None:
    model, hip, optimizer, replay = setup("full")
    before = snapshot(hip)
    result = refresh(model, hip, optimizer, replay, "off")
    assert result.refreshed == 0
    for name in NAMES:
        assert torch.equal(getattr(hip, name), before[name])


def test_an_expert_without_probe_episodes_is_not_reset() -> None:
    model, hip, optimizer, replay = setup("full")
    replay.tensors["experts"][replay.tensors["experts"] == 0] = 1  # now expert 0 was never routed to
    result = refresh(model, hip, optimizer, replay, "absorbed")
    assert result.refreshed == 0
    assert result.mean_agreement == pytest.approx(0.5)  # expert 1 now holds both kinds of episode


def test_agreement_hand_value() -> None:
    # 2 experts, 2 probe episodes of 3 tokens each; -100 marks an unsupervised token
    base = torch.tensor([[1, 2, 3], [4, 5, 6], [1, 1, 1], [2, 2, 2]])
    labels = torch.tensor([[-100, 2, 0], [4, 0, 6], [1, 1, 1], [9, 9, 9]])
    agree, total = probe_counts(base, labels)
    assert agree.tolist() == [1, 2, 3, 0] and total.tolist() == [2, 3, 3, 3]
    counts = torch.stack([agree, total]).float().view(2, 2, 2)
    valid = torch.tensor([[True, True], [True, False]])
    agreement, tested = expert_agreement(counts, valid)
    # expert 0: supervised tokens 2 + 3 = 5, agreeing 1 + 2 = 3 -> 0.6
    # expert 1: only episode 0 is valid: 3 of 3 agree -> 1.0 (episode 1, 0 of 3, does not count)
    assert agreement.tolist() == pytest.approx([0.6, 1.0])
    assert tested.tolist() == [True, True]
    none_valid = expert_agreement(counts, torch.zeros(2, 2, dtype=torch.bool))
    assert none_valid[1].tolist() == [False, False]


def _probes(model: TinyTransformer, hip: Hippocampus, replay: ReplayBuffer) -> tuple[list[float], list[float]]:
    index, valid = replay.recent_episodes_of(2, 8)
    base, _, combined = probe_agreement(model, replay, index, valid, hippocampus=hip)
    return base.tolist(), combined.tolist()


def test_relative_also_recycles_an_expert_the_hippocampus_adds_nothing_to() -> None:
    model, hip, optimizer, replay = setup("full")
    base, combined = _probes(model, hip, replay)
    assert base[1] == combined[1] == 0.0  # expert 1's labels: wrong for the neocortex with or without the delta
    assert refresh(model, hip, optimizer, replay, "absorbed").refreshed == 1
    model, hip, optimizer, replay = setup("full")
    result = refresh(model, hip, optimizer, replay, "relative")
    assert result.refreshed == 2 and result.mean_agreement == pytest.approx(0.5)
    for name in NAMES:
        torch.testing.assert_close(getattr(hip, name), getattr(hip, f"{name}_init"))


def test_relative_spares_an_expert_the_combined_model_needs() -> None:
    model, hip, optimizer, replay = setup("full")
    with torch.no_grad():
        hip.w2.mul_(300.0)  # a delta that changes the answers
        # expert 1's episodes relabelled with the combined model's answers: the hippocampus is needed there
        slots = (replay.tensors["experts"][: len(replay), 0] == 1).nonzero().flatten()
        ids = replay.tensors["input_ids"][slots].long()
        hidden = model.encode(ids, None)
        labels = model.decode(hidden + hip(hidden).delta, None).argmax(-1)
        labels[:, 0] = -100
        replay.tensors["labels"][slots] = labels.to(torch.int32)
    base, combined = _probes(model, hip, replay)
    assert combined[1] == 1.0 and base[1] < 1.0  # the combined model answers them, the neocortex alone does not
    before = snapshot(hip)
    assert refresh(model, hip, optimizer, replay, "relative").refreshed == 1  # expert 0 only (absorbed)
    for name in NAMES:
        assert torch.equal(getattr(hip, name)[1], before[name][1])
