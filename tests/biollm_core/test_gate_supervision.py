"""The gate's targets and loss (``biollm_core/gate_supervision.py``); the cached targets inside a wake
step are tested with it (``test_wake.py``)."""

import pytest
import torch

from biollm_core.device import Precision
from biollm_core.distributed import SINGLE
from biollm_core.gate_supervision import gate_loss, gate_supervision, gate_targets, neocortex_gate_targets
from biollm_core.hippocampus import Hippocampus
from biollm_core.models.tiny_transformer import TinyTransformer
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_sample import ReplaySample


def test_gate_targets_are_the_share_of_tokens_the_neocortex_gets_wrong() -> None:
    labels = torch.tensor([[1, 2, -100, 3], [0, -100, -100, -100], [-100, -100, -100, -100]])
    logits = torch.zeros(3, 4, 5)
    for (i, j), value in {(0, 0): 1, (0, 1): 4, (0, 2): 0, (0, 3): 3, (1, 0): 2}.items():
        logits[i, j, value] = 1.0  # argmax: right, wrong, (unsupervised), right | wrong | nothing supervised
    torch.testing.assert_close(gate_targets(logits, labels), torch.tensor([1 / 3, 1.0, 0.0]))


def test_gate_loss_counts_real_tokens_only() -> None:
    logits = torch.tensor([[[0.0], [5.0]]])  # (1, 2, 1)
    full = gate_loss(logits, torch.tensor([1.0]), None)
    masked = gate_loss(logits, torch.tensor([1.0]), torch.tensor([[1, 0]]))
    torch.testing.assert_close(masked, torch.nn.functional.softplus(torch.tensor(0.0)))  # -log sigmoid(0)
    assert full < masked  # the padded token, gate wide open, would have lowered it


V, T, H, B, R = 16, 6, 16, 4, 3
CPU = Precision(device=torch.device("cpu"))


def _model() -> TinyTransformer:
    torch.manual_seed(0)
    return TinyTransformer(vocab_size=V, input_vocab_size=V, hidden_size=H, num_layers=2, num_heads=2, mlp_ratio=2,
                           max_seq_len=T, injection_layer=1)


def _replayed(labels: torch.Tensor, base_targets: torch.Tensor, mask: torch.Tensor) -> ReplaySample:
    return ReplaySample(input_ids=torch.zeros(R, T, dtype=torch.long), labels=labels, attention_mask=mask, teacher=None,
                        teacher_indices=None, task_ids=torch.zeros(R, dtype=torch.long), base_targets=base_targets)


def test_cached_targets_are_reused_and_only_the_batch_and_stale_episodes_are_decoded() -> None:
    model = _model()
    g = torch.Generator().manual_seed(1)
    x, labels = torch.randint(0, V, (B + R, T), generator=g), torch.randint(0, V, (B + R, T), generator=g)
    mask = torch.ones(B + R, T, dtype=torch.bool)
    mask[1, 4:] = mask[B + 2, 3:] = False  # right padding, in the batch and in a stale replayed episode
    labels[~mask] = -100
    with torch.no_grad():
        hidden = model.encode(x, mask)
    uncached = neocortex_gate_targets(model, hidden, mask, labels[:B], _replayed(labels[B:], torch.full((R,), float("nan")), mask[B:]),
                                      CPU, cached=False)
    assert torch.equal(uncached, gate_targets(model.decode(hidden, mask), labels))
    known = torch.tensor([0.123, float("nan"), float("nan")])  # a cached value (deliberately not the decoded one) and two stale
    cached = neocortex_gate_targets(model, hidden, mask, labels[:B], _replayed(labels[B:], known, mask[B:]), CPU, cached=True)
    assert cached[B] == pytest.approx(0.123)  # reused, not decoded
    torch.testing.assert_close(cached[torch.arange(B + R) != B], uncached[torch.arange(B + R) != B], rtol=0, atol=0)


def test_gate_supervision_needs_a_gate_a_weight_and_rows_to_teach_it_on() -> None:
    model = _model()
    hip = Hippocampus(hidden_size=H, num_experts=4, expert_hidden=8, top_k=2, routing="token", init_scale=1e-3,
                      utilization_bonus=0.1, capacity_penalty=0.1, seed=1, gate=True)
    g = torch.Generator().manual_seed(2)
    x, labels = torch.randint(0, V, (B + R, T), generator=g), torch.randint(0, V, (B + R, T), generator=g)
    with torch.no_grad():
        hidden = model.encode(x)
    routed = hip(hidden)
    harm = _replayed(labels[B:], torch.full((R,), float("nan")), torch.ones(R, T, dtype=torch.bool))
    buffer = ReplayBuffer(capacity=8, seq_len=T, vocab_size=V, top_k_experts=2, teacher_storage="none", teacher_topk=1,
                          device=torch.device("cpu"), seed=0, with_attention_mask=False, base_targets=True)
    settings = {"gate_on_batch": True, "harm_batch_size": R, "base_frozen": True, "distributed": SINGLE}

    def supervise(replay: ReplayBuffer | None, routed_output: object, rows: torch.Tensor, replayed: ReplaySample | None,
                  **overrides: object):
        return gate_supervision(model, replay, routed_output, rows, None, labels[:B], replayed, CPU,
                                **{"gate_weight": 1.0, **settings, **overrides})

    assert supervise(buffer, routed, hidden, harm, gate_weight=0.0) is None
    ungated = Hippocampus(hidden_size=H, num_experts=4, expert_hidden=8, top_k=2, routing="token", init_scale=1e-3,
                          utilization_bonus=0.1, capacity_penalty=0.1, seed=1, gate=False)
    assert supervise(buffer, ungated(hidden), hidden, harm) is None
    assert supervise(buffer, hip(hidden[:B]), hidden[:B], None, gate_on_batch=False) is None  # no replayed rows, batch left out
    taught = supervise(buffer, routed, hidden, harm)
    assert taught.cache is buffer and taught.batch_targets.shape == (B,) and taught.harm_targets.shape == (R,)
    taught.term.backward()
    assert hip.gate.weight.grad.abs().sum() > 0  # the BCE reaches the gate
    for uncached in (supervise(None, routed, hidden, harm), supervise(buffer, routed, hidden, harm, base_frozen=False)):
        assert uncached.cache is None and uncached.batch_targets is None and uncached.harm_targets is None
