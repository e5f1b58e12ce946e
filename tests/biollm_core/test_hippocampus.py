"""The hippocampus: shapes, a vectorised forward equal to a naive loop, capacity steering, resets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from biollm_core.hippocampus import Hippocampus

H, E, D = 8, 4, 6


def make(routing: str = "sequence", top_k: int = 2, init_scale: float = 0.5, **kwargs: object) -> Hippocampus:
    settings = {"utilization_bonus": 0.1, "capacity_penalty": 0.1, **kwargs}
    return Hippocampus(
        hidden_size=H, num_experts=E, expert_hidden=D, top_k=top_k, routing=routing, init_scale=init_scale,
        seed=0, **settings,
    )


def expert(hip: Hippocampus, e: int, x: torch.Tensor) -> torch.Tensor:
    """(..., H) -> (..., H): expert e applied on its own."""
    return F.gelu(x @ hip.w1[e] + hip.b1[e]) @ hip.w2[e] + hip.b2[e]


def reference_routing(hip: Hippocampus, units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Routing written out from the spec: adjusted logits, softmax, top-k, renormalise (k > 1)."""
    share = hip.counts / hip.counts.sum().clamp_min(1.0)
    count_term = hip.counts / hip.counts.max().clamp_min(1e-12)
    drift_term = hip.drift / hip.drift.max().clamp_min(1e-12)
    capacity = (count_term + drift_term) / 2
    logits = units @ hip.router.weight.t() + hip.router.bias
    logits = logits + hip.utilization_bonus * (1 - share) - hip.capacity_penalty * capacity
    probs = logits.softmax(-1)
    top_p, top_i = probs.topk(hip.top_k, -1)
    if hip.top_k > 1:
        top_p = top_p / top_p.sum(-1, keepdim=True)
    return top_p, top_i


def with_history(hip: Hippocampus) -> Hippocampus:
    """Non-trivial statistics so the usage/capacity adjustments take part in the comparison."""
    with torch.no_grad():
        hip.counts.copy_(torch.tensor([9.0, 1.0, 4.0, 0.0]))
        hip.drift.copy_(torch.tensor([0.2, 0.0, 0.5, 0.1]))
        hip.router.weight.normal_(0, 0.5)
        hip.router.bias.copy_(torch.tensor([0.3, -0.1, 0.0, 0.2]))
        hip.b1.normal_(0, 0.1)
        hip.b2.normal_(0, 0.1)
    return hip


@pytest.mark.parametrize("routing", ["sequence", "token"])
def test_forward_shapes(routing: str) -> None:
    hip = make(routing)
    out = hip(torch.randn(3, 5, H, generator=torch.Generator().manual_seed(0)))
    n = 3 if routing == "sequence" else 15
    assert out.delta.shape == (3, 5, H)
    assert out.probs.shape == (n, E)
    assert out.indices.shape == (n, 2)
    assert out.episode_experts.shape == (3, 2)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(n))


def test_a_fresh_hippocampus_barely_changes_the_hidden_state() -> None:
    hip = make(init_scale=1e-3)  # the config default
    hidden = torch.randn(4, 6, H, generator=torch.Generator().manual_seed(1))
    delta = hip(hidden).delta
    # output weights of std 1e-3 over D=6 hidden units of size O(1): |delta| ~ 1e-3, against |hidden| ~ 1
    assert delta.abs().max() < 0.02
    assert delta.norm() < 0.01 * hidden.norm()


def test_sequence_delta_equals_a_naive_loop() -> None:
    hip = with_history(make("sequence"))
    hidden = torch.randn(3, 5, H, generator=torch.Generator().manual_seed(2))
    out = hip(hidden)
    weights, indices = reference_routing(hip, hidden.mean(1))
    assert torch.equal(out.indices, indices)
    assert torch.equal(out.episode_experts, indices)
    expected = torch.zeros_like(hidden)
    for b in range(3):
        for j in range(hip.top_k):
            expected[b] += weights[b, j] * expert(hip, int(indices[b, j]), hidden[b])
    torch.testing.assert_close(out.delta, expected, rtol=1e-5, atol=1e-6)


def test_sequence_routing_pools_only_real_tokens_under_a_mask() -> None:
    hip = with_history(make("sequence"))
    hidden = torch.randn(2, 4, H, generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    out = hip(hidden, mask)
    _, indices = reference_routing(hip, torch.stack([hidden[0].mean(0), hidden[1, :2].mean(0)]))
    assert torch.equal(out.indices, indices)


def test_token_delta_equals_a_naive_loop() -> None:
    hip = with_history(make("token"))
    hidden = torch.randn(2, 4, H, generator=torch.Generator().manual_seed(4))
    out = hip(hidden)
    units = hidden.reshape(8, H)
    weights, indices = reference_routing(hip, units)
    assert torch.equal(out.indices, indices)
    expected = torch.zeros_like(units)
    for n in range(8):
        for j in range(hip.top_k):
            expected[n] += weights[n, j] * expert(hip, int(indices[n, j]), units[n])
    torch.testing.assert_close(out.delta, expected.view(2, 4, H), rtol=1e-5, atol=1e-6)


def test_token_routing_episode_experts_are_the_heaviest() -> None:
    hip = with_history(make("token"))
    hidden = torch.randn(2, 4, H, generator=torch.Generator().manual_seed(5))
    out = hip(hidden)
    weights, indices = reference_routing(hip, hidden.reshape(8, H))
    for b in range(2):
        mass = torch.zeros(E)
        for t in range(4):
            mass.index_add_(0, indices[b * 4 + t], weights[b * 4 + t])
        assert set(out.episode_experts[b].tolist()) == set(mass.topk(2).indices.tolist())


def test_top_one_routing_uses_the_raw_probability() -> None:
    hip = with_history(make("sequence", top_k=1))
    hidden = torch.randn(2, 3, H, generator=torch.Generator().manual_seed(6))
    out = hip(hidden)
    p = out.probs.gather(1, out.indices)  # (B, 1) raw probability of the chosen expert
    expected = torch.stack([p[b, 0] * expert(hip, int(out.indices[b, 0]), hidden[b]) for b in range(2)])
    torch.testing.assert_close(out.delta, expected, rtol=1e-5, atol=1e-6)


def test_a_busy_expert_loses_the_choice() -> None:
    hip = make("sequence", top_k=1, utilization_bonus=1.0, capacity_penalty=1.0)
    with torch.no_grad():
        hip.router.weight.zero_()
        hip.router.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))  # raw logits prefer expert 0
    hidden = torch.randn(2, 3, H)
    assert hip(hidden).indices.flatten().tolist() == [0, 0]
    hip.record_routing(torch.zeros(100, 1, dtype=torch.long))  # expert 0 took every activation
    # adjusted: expert 0 -> 1 + 0 - 0.5 = 0.5, others -> 0 + 1 - 0 = 1
    assert 0 not in hip(hidden).indices.flatten().tolist()


def test_record_routing_counts_and_novelty() -> None:
    hip = make()
    assert hip.record_routing(torch.tensor([[0, 1], [1, 0]])).item() == pytest.approx(1.0)
    assert hip.counts.tolist() == [2.0, 2.0, 0.0, 0.0]
    # experts 1 (seen) and 2 (new): half of this step's experts are new
    assert hip.record_routing(torch.tensor([[1, 2]])).item() == pytest.approx(0.5)
    assert hip.usage_share().tolist() == pytest.approx([1 / 3, 1 / 2, 1 / 6, 0.0])


def test_update_drift_is_the_l2_distance_from_init() -> None:
    hip = make()
    with torch.no_grad():
        hip.b2[2] += torch.tensor([3.0, 4.0] + [0.0] * (H - 2))  # L2 = 5
    hip.update_drift()
    assert hip.drift.tolist() == pytest.approx([0.0, 0.0, 5.0, 0.0])


@pytest.mark.parametrize("factor", [0.0, 0.5])
def test_reset_experts_moves_only_the_chosen_ones(factor: float) -> None:
    hip = make()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name in ("w1", "b1", "w2", "b2"):
            getattr(hip, name).add_(torch.randn(getattr(hip, name).shape, generator=gen))
        hip.router.bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    hip.record_routing(torch.tensor([[0, 1], [2, 3]]))
    hip.update_drift()
    before = {name: getattr(hip, name).detach().clone() for name in ("w1", "b1", "w2", "b2")}
    drift = hip.drift.clone()
    chosen = torch.tensor([True, False, True, False])
    hip.reset_experts(chosen, factor)
    for name, old in before.items():
        init = getattr(hip, f"{name}_init")
        new = getattr(hip, name)
        for e in range(E):
            if chosen[e]:
                torch.testing.assert_close(new[e], init[e] + factor * (old[e] - init[e]))
            else:
                assert torch.equal(new[e], old[e])  # spared experts keep every bit
        if factor == 0.0:
            assert torch.equal(new[0], init[0])
    assert hip.router.bias.tolist() == pytest.approx([factor, 2.0, 3 * factor, 4.0])
    assert hip.counts.tolist() == pytest.approx([factor, 1.0, factor, 1.0])
    torch.testing.assert_close(hip.drift, drift * torch.tensor([factor, 1.0, factor, 1.0]))
    # a fresh expert (factor 0) counts as never used again; a half reset keeps its history
    assert hip.ever_used.tolist() == [factor > 0, True, factor > 0, True]


def test_sequence_delta_gradients_equal_a_naive_loop() -> None:
    """The batched gather (index_select) sends every expert's gradient where the naive loop does."""
    hip = with_history(make("sequence"))
    hidden = torch.randn(4, 5, H, generator=torch.Generator().manual_seed(8))
    target = torch.randn(4, 5, H, generator=torch.Generator().manual_seed(9))
    (hip(hidden).delta * target).sum().backward()
    fast = {name: p.grad.clone() for name, p in hip.named_parameters()}
    hip.zero_grad()
    weights, indices = reference_routing(hip, hidden.mean(1))
    expected = torch.stack(
        [sum(weights[b, j] * expert(hip, int(indices[b, j]), hidden[b]) for j in range(hip.top_k)) for b in range(4)]
    )
    (expected * target).sum().backward()
    assert len(set(indices.flatten().tolist())) > 1  # several experts share the gradient
    for name, p in hip.named_parameters():
        torch.testing.assert_close(fast[name], p.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_routing_follows_every_change_of_the_statistics() -> None:
    """Routing matches the reference after every way the statistics change (routing, drift, reset, load)."""
    hip = with_history(make("sequence"))
    hidden = torch.randn(6, 5, H, generator=torch.Generator().manual_seed(10))

    def assert_routes_like_the_reference() -> None:
        weights, indices = reference_routing(hip, hidden.mean(1))
        out = hip(hidden)
        assert torch.equal(out.indices, indices)
        top = out.probs.topk(hip.top_k, -1).values
        torch.testing.assert_close(top / top.sum(-1, keepdim=True), weights)

    assert_routes_like_the_reference()
    hip.record_routing(torch.tensor([[0, 2]] * 50))
    assert_routes_like_the_reference()
    with torch.no_grad():
        hip.w2[3] += 1.0
    hip.update_drift()
    assert_routes_like_the_reference()
    hip.reset_experts(torch.tensor([True, False, False, True]), 0.0)
    assert_routes_like_the_reference()
    other = with_history(make("sequence"))
    other.record_routing(torch.tensor([[1, 3]] * 20))
    hip.load_state_dict(other.state_dict())
    assert_routes_like_the_reference()


def test_attention_routing_starts_as_the_mean_and_learns_where_to_look() -> None:
    hidden = torch.randn(2, 5, H, generator=torch.Generator().manual_seed(1))
    attention, mean = make("attention"), make("sequence")
    torch.testing.assert_close(attention._pool(hidden, None), mean._pool(hidden, None))  # a zero query: uniform weights
    with torch.no_grad():
        attention.route_query.copy_(hidden[0, 0] * 50)  # a query that singles out token 0 of sequence 0
    pooled = attention._pool(hidden, None)
    torch.testing.assert_close(pooled[0], hidden[0, 0], atol=1e-3, rtol=0)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        attention.route_query.zero_()
    torch.testing.assert_close(attention._pool(hidden, mask)[0], hidden[0, :2].mean(0))  # padding never pooled


def test_a_closed_gate_silences_the_delta_and_the_bound_caps_it() -> None:
    from biollm_core.hippocampus import bound_delta

    hidden = torch.randn(2, 3, H, generator=torch.Generator().manual_seed(2))
    shut = make(gate=True, gate_bias=-30.0)
    assert shut(hidden).delta.abs().max() < 1e-9
    half = make(gate=True, gate_bias=0.0)
    open_ = make()
    torch.testing.assert_close(half(hidden).delta, 0.5 * open_(hidden).delta)  # sigmoid(0) = 1/2
    delta = torch.tensor([[[3.0, 4.0], [0.3, 0.4]]])  # norms 5 and 0.5
    h = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # norm 1
    torch.testing.assert_close(bound_delta(delta, h, 1.0), torch.tensor([[[0.6, 0.8], [0.3, 0.4]]]))  # only the first is cut
    capped = make(max_delta_ratio=0.01)(hidden)
    assert (capped.delta.norm(dim=-1) <= 0.01 * hidden.norm(dim=-1) + 1e-6).all()


@pytest.mark.parametrize(("d", "grouped"), [(5, None), (4, False), (4, True)])
def test_sparse_token_dispatch_equals_the_dense_mixture(d: int, grouped: bool | None) -> None:
    """Many experts: each runs only on its tokens; the delta and its gradients are the dense mixture's,
    with the experts as one grouped matmul per layer (``grouped``) or a loop over them."""
    from biollm_core.hippocampus import dispatch_experts

    g = torch.Generator().manual_seed(4)
    n, h, e, k = 37, 8, 12, 2
    units = torch.randn(n, h, generator=g, requires_grad=True)
    w1, b1 = torch.randn(e, h, d, generator=g), torch.randn(e, d, generator=g)
    w2, b2 = torch.randn(e, d, h, generator=g), torch.randn(e, h, generator=g)
    params = [p.requires_grad_() for p in (w1, b1, w2, b2)]
    weights = torch.rand(n, k, generator=g, requires_grad=True)  # the router's gradient flows through them
    indices = torch.rand(n, e - 1, generator=g).topk(k, dim=-1).indices  # k distinct experts per token; e-1 unused
    sparse = dispatch_experts(units, weights, indices, *params, grouped=grouped)
    dense = torch.zeros(n, e).scatter_(1, indices, weights)
    reference = torch.einsum("ned,edh->nh", F.gelu(torch.einsum("nh,ehd->ned", units, w1) + b1) * dense.unsqueeze(-1), w2) + dense @ b2
    torch.testing.assert_close(sparse, reference)
    grads = torch.autograd.grad(sparse.square().sum(), [units, weights, *params])
    expected = torch.autograd.grad(reference.square().sum(), [units, weights, *params])
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)  # float32 sums in another order


def test_grouped_dispatch_is_chosen_only_where_its_kernel_takes_the_inputs() -> None:
    """CPU, the weights' dtype, rows of a multiple of 16 bytes (the kernel's stride rule): the default
    path there; anywhere else the loop (a user's expert_hidden of 30 must not fail)."""
    from biollm_core.hippocampus import _cpu_grouped_mm_works, grouped_mm_supported

    _cpu_grouped_mm_works.cache_clear()
    with torch.inference_mode():  # the first call may come from an evaluation pass: its probe still runs a backward
        assert _cpu_grouped_mm_works()
    _cpu_grouped_mm_works.cache_clear()
    torch.set_default_dtype(torch.float64)
    try:
        assert _cpu_grouped_mm_works()  # its own float32 tensors, whatever the default dtype
    finally:
        torch.set_default_dtype(torch.float32)
    units = torch.zeros(10, 8)
    assert grouped_mm_supported(units, torch.zeros(3, 8, 4))  # PyTorch >= 2.9 on CPU (the lock's 2.14 has it)
    assert not grouped_mm_supported(units, torch.zeros(3, 8, 5))  # 20-byte rows
    assert not grouped_mm_supported(units.bfloat16(), torch.zeros(3, 8, 4))  # autocast's dtype, not the weights'
    assert not grouped_mm_supported(units.double(), torch.zeros(3, 8, 4).double())  # the kernel takes no float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not grouped_mm_supported(units, torch.zeros(3, 8, 4))


def test_token_routing_runs_under_cpu_autocast() -> None:
    """bf16 autocast on CPU: the bias mixture is autocast, a grouped product would not be (mixed dtypes)."""
    hip = Hippocampus(hidden_size=8, num_experts=6, expert_hidden=4, top_k=2, routing="token", init_scale=0.1,
                      utilization_bonus=0.0, capacity_penalty=0.0, seed=0)
    hidden = torch.randn(2, 5, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = hip(hidden)
    assert out.delta.shape == (2, 5, 8) and torch.isfinite(out.delta.float()).all()
