"""The hippocampus: a sparse mixture of small experts that adds a delta to the neocortex (spec §2).

Experts are stored as stacked tensors (E, ...) so routing and expert evaluation are batched: no Python
loop over the batch, the experts or k.

Wake-path options (issue 11): ``routing="attention"`` pools the routing unit of a sequence with a learned
query instead of a plain mean (a task cue among 15 other tokens is not diluted); ``gate=True`` scales the
delta per token by a learned sigmoid gate (the do-no-harm replay of ``wake.py`` teaches it to close on
inputs the neocortex already answers); ``max_delta_ratio`` bounds ``||delta|| <= r ||hidden||`` per token.
The gate and the routing query survive an expert's refresh: they describe inputs, not one expert.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from biollm_core.routing import adjusted_router_logits, expert_capacity, top_k_routing


@dataclass
class RoutingOutput:
    delta: torch.Tensor  # (B, T, H)
    probs: torch.Tensor  # (N, E) softmax over adjusted router logits; N = B (sequence) or B*T (token)
    indices: torch.Tensor  # (N, k) chosen experts
    episode_experts: torch.Tensor  # (B, k) the experts each sequence was routed to (for the replay buffer)
    gate_logits: torch.Tensor | None = None  # (B, T, 1) the gate's logits (experts.gate), before the sigmoid


class Hippocampus(nn.Module):
    def __init__(
        self,
        *,
        hidden_size: int,
        num_experts: int,
        expert_hidden: int,
        top_k: int,
        routing: str,
        init_scale: float,
        utilization_bonus: float,
        capacity_penalty: float,
        seed: int,
        gate: bool = False,
        gate_bias: float = 0.0,
        max_delta_ratio: float | None = None,
    ) -> None:
        super().__init__()
        self.num_experts, self.top_k, self.routing = num_experts, top_k, routing
        self.utilization_bonus, self.capacity_penalty = utilization_bonus, capacity_penalty
        self.max_delta_ratio = max_delta_ratio
        g = torch.Generator().manual_seed(seed)
        bound_in = 1.0 / math.sqrt(hidden_size)
        E, H, D = num_experts, hidden_size, expert_hidden
        self.w1 = nn.Parameter((torch.rand(E, H, D, generator=g) * 2 - 1) * bound_in)
        self.b1 = nn.Parameter(torch.zeros(E, D))
        # Output layer near zero: a fresh expert barely changes the neocortex.
        self.w2 = nn.Parameter(torch.randn(E, D, H, generator=g) * init_scale)
        self.b2 = nn.Parameter(torch.zeros(E, H))
        self.router = nn.Linear(H, E)
        with torch.no_grad():
            self.router.weight.copy_(torch.randn(E, H, generator=g) * 0.02)
            self.router.bias.zero_()
        # Attention pooling of the routing unit: a learned query; zero at init = the plain mean.
        self.route_query = nn.Parameter(torch.zeros(H)) if routing == "attention" else None
        self.gate = nn.Linear(H, 1) if gate else None
        if self.gate is not None:
            with torch.no_grad():
                self.gate.weight.zero_()
                self.gate.bias.fill_(gate_bias)  # sigmoid(bias): how open the gate starts
        for name in ("w1", "b1", "w2", "b2"):
            self.register_buffer(f"{name}_init", getattr(self, name).detach().clone())
        self.register_buffer("counts", torch.zeros(E))  # activations per expert so far
        self.register_buffer("drift", torch.zeros(E))  # L2 distance from init, refreshed every drift_interval
        self.register_buffer("ever_used", torch.zeros(E, dtype=torch.bool))

    def expert_parameters(self) -> tuple[nn.Parameter, ...]:
        """The per-expert parameters (dim 0 = expert): an expert no unit was routed to gets no gradient."""
        return self.w1, self.b1, self.w2, self.b2

    # ---- statistics -------------------------------------------------------------------------------
    def usage_share(self) -> torch.Tensor:
        return self.counts / self.counts.sum().clamp_min(1.0)

    def capacity(self) -> torch.Tensor:
        return expert_capacity(self.counts, self.drift)

    @torch.no_grad()
    def record_routing(self, indices: torch.Tensor) -> torch.Tensor:
        """Count this step's activations; returns novelty = fraction of chosen experts never used before."""
        return self.record_usage(torch.bincount(indices.flatten(), minlength=self.num_experts))

    @torch.no_grad()
    def record_usage(self, used: torch.Tensor) -> torch.Tensor:
        """``record_routing`` from (E,) activation counts (data parallel: summed over every rank's shard)."""
        chosen = used > 0
        novelty = (chosen & ~self.ever_used).sum() / chosen.sum().clamp_min(1)
        self.counts += used.to(self.counts.dtype)
        self.ever_used |= chosen
        return novelty.float()

    @torch.no_grad()
    def update_drift(self) -> None:
        """One sweep over the expert weights: (E,) L2 distance of each expert from its initial values."""
        sq = torch.zeros_like(self.drift)
        for name in ("w1", "b1", "w2", "b2"):
            diff = getattr(self, name) - getattr(self, f"{name}_init")
            sq += diff.pow(2).flatten(1).sum(1)
        self.drift.copy_(sq.sqrt())

    @torch.no_grad()
    def reset_experts(self, experts: torch.Tensor, reset_factor: float) -> None:
        """Recycle ``experts`` (bool mask (E,)): theta = init + reset_factor * (theta - init)."""
        keep = torch.where(experts, torch.tensor(reset_factor, device=experts.device), torch.ones((), device=experts.device))
        for name in ("w1", "b1", "w2", "b2"):
            param, init = getattr(self, name), getattr(self, f"{name}_init")
            shape = (-1,) + (1,) * (param.dim() - 1)
            param.lerp_(init, 1 - keep.view(shape))  # lerp is exact at weights 0 and 1: spared experts keep their bits
        self.router.bias.mul_(keep)
        self.counts.mul_(keep)
        self.drift.mul_(keep)
        self.ever_used &= ~experts | (keep > 0)

    # ---- forward ----------------------------------------------------------------------------------
    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> RoutingOutput:
        B, T, H = hidden.shape
        if self.routing == "token":
            units = hidden.reshape(B * T, H)
        else:
            units = self._pool(hidden, attention_mask)  # (B, H)
        logits = adjusted_router_logits(
            self.router(units), self.usage_share(), self.capacity(), self.utilization_bonus, self.capacity_penalty
        )
        probs = logits.float().softmax(dim=-1).to(hidden.dtype)  # (N, E)
        weights, indices = top_k_routing(probs, self.top_k)  # (N, k)
        if self.routing == "token":
            delta = self._token_delta(units, weights, indices).view(B, T, H)
            episode_experts = self._dominant_experts(weights.view(B, T, -1), indices.view(B, T, -1))
        else:
            delta = self._sequence_delta(hidden, weights, indices)
            episode_experts = indices
        gate_logits = None
        if self.gate is not None:
            # On the normalised hidden state: the gate reads its direction, the same at any model's scale
            gate_logits = self.gate(F.layer_norm(hidden, hidden.shape[-1:]))  # (B, T, 1): per token
            delta = delta * torch.sigmoid(gate_logits)
        if self.max_delta_ratio is not None:
            delta = bound_delta(delta, hidden, self.max_delta_ratio)
        return RoutingOutput(delta=delta, probs=probs, indices=indices, episode_experts=episode_experts, gate_logits=gate_logits)

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, H) -> (B, H): the mean over real tokens, or their attention-weighted mean."""
        mask = None if attention_mask is None else attention_mask.to(torch.bool)
        if self.route_query is None:
            if mask is None:
                return hidden.mean(dim=1)
            m = mask.to(hidden.dtype).unsqueeze(-1)
            return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        scores = hidden @ self.route_query  # (B, T)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return (scores.softmax(dim=1).unsqueeze(-1) * hidden).sum(1)

    def _sequence_delta(self, hidden: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        # Only the k chosen experts of each sequence are evaluated, as B*k batched matmuls over gathered
        # weights. index_select, not advanced indexing: its backward is index_add_, where indexing's is an
        # accumulating index_put_ (~0.8 ms per weight tensor on CPU, a third of a train=cpu wake step);
        # and the gathered weights are used in their stored layout, with no permuted copy of them.
        B, T, H = hidden.shape
        k, D = indices.shape[1], self.w1.shape[2]
        flat = indices.reshape(-1)  # (B*k,)
        x = hidden.unsqueeze(1).expand(B, k, T, H).reshape(B * k, T, H)
        h = torch.baddbmm(self.b1.index_select(0, flat).unsqueeze(1), x, self.w1.index_select(0, flat))  # (B*k, T, D)
        h = F.gelu(h) * weights.reshape(B * k, 1, 1).to(h.dtype)  # mixture weights folded in before the output layer
        h = h.view(B, k, T, D).transpose(1, 2).reshape(B, T, k * D)
        w2 = self.w2.index_select(0, flat).view(B, k * D, H)  # (B, k*D, H)
        b2 = torch.bmm(weights.view(B, 1, k).to(w2.dtype), self.b2.index_select(0, flat).view(B, k, H))  # (B, 1, H)
        return torch.baddbmm(b2, h, w2)  # (B, T, H) = sum_j p_j * (W2_j h_j + b2_j)

    def _token_delta(self, units: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """(N, H) tokens, (N, k) routing -> (N, H) = sum_j p_j * (W2_j gelu(W1_j x + b1_j) + b2_j).

        With few experts (E <= 2k, most of them chosen anyway) every expert runs densely on every token and
        a sparse (N, E) weight matrix mixes them; otherwise each expert runs only on the tokens routed to
        it (``dispatch_experts``): E/k times fewer FLOPs, which pays for the dispatch from train=cpu size
        up (E 8, k 2; `biollm bench engine train=cpu experts.top_k=4` times the dense path at that width).
        """
        if self.num_experts <= 2 * self.top_k:
            (N, H), (E, _, D) = units.shape, self.w1.shape
            dense = torch.zeros(N, E, dtype=units.dtype, device=units.device).scatter_(1, indices, weights)  # (N, E)
            # The experts side by side as one (H, E*D) and one (E*D, H) matrix: two plain matmuls, where
            # batched ones over E materialised (N, E, H) and summed it (a third of the hippocampus's time).
            h = F.gelu(torch.addmm(self.b1.reshape(E * D), units, self.w1.transpose(0, 1).reshape(H, E * D)))  # (N, E*D)
            h = (h.view(N, E, D) * dense.unsqueeze(-1)).view(N, E * D)
            return torch.addmm(dense @ self.b2, h, self.w2.reshape(E * D, H))  # (N, H)
        return dispatch_experts(units, weights, indices, self.w1, self.b1, self.w2, self.b2)

    def _dominant_experts(self, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """(B, T, k) token routing -> (B, k) the experts with the most routing mass in each sequence."""
        B = weights.shape[0]
        mass = torch.zeros(B, self.num_experts, dtype=weights.dtype, device=weights.device)
        mass.scatter_add_(1, indices.reshape(B, -1), weights.reshape(B, -1))
        return mass.topk(self.top_k, dim=-1).indices


def dispatch_experts(
    units: torch.Tensor,
    weights: torch.Tensor,
    indices: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    *,
    grouped: bool | None = None,
) -> torch.Tensor:
    """Sparse mixture: each expert e on the tokens routed to it only, outputs scattered back weighted.

    units (N, H), weights/indices (N, k); w1 (E, H, D), b1 (E, D), w2 (E, D, H), b2 (E, H) -> (N, H).
    ``grouped`` (default: where ``grouped_mm_supported``) runs the experts as one grouped matmul per layer
    over the rows sorted by expert, with no host sync; otherwise a loop over the experts (one host sync,
    the per-expert token counts). The same mixture up to float rounding (the grouped path applies the
    mixture weights before the output layer, not after it).
    """
    N, k = indices.shape
    flat = indices.reshape(-1)
    experts, order = torch.sort(flat, stable=True)  # routed (token, slot) pairs grouped by expert
    tokens = order // k
    scale = weights.reshape(-1).index_select(0, order).unsqueeze(-1).to(units.dtype)
    x = units.index_select(0, tokens)  # (N*k, H) in expert order
    counts = torch.bincount(flat, minlength=w1.shape[0])  # rows per expert
    if grouped is None:
        grouped = grouped_mm_supported(units, w1)
    if grouped:
        offs = counts.cumsum(0).to(torch.int32)  # each expert's last row + 1
        h = F.gelu(F.grouped_mm(x, w1, offs=offs) + b1.index_select(0, experts)) * scale  # (N*k, D)
        # sum_j p_j (W2_j h_j + b2_j): the weights are folded into h, and the biases' mixture is one
        # (N, E) @ (E, H) product the rows are added onto.
        mixture = torch.zeros(N, w1.shape[0], dtype=units.dtype, device=units.device).scatter_add_(1, indices, weights.to(units.dtype))
        return (mixture @ b2).index_add_(0, tokens, F.grouped_mm(h, w2, offs=offs))
    sizes = counts.tolist()
    pieces = []
    for e, part in enumerate(torch.split(x, sizes)):
        if sizes[e]:
            pieces.append(torch.addmm(b2[e], F.gelu(torch.addmm(b1[e], part, w1[e])), w2[e]))
    y = torch.cat(pieces) * scale
    return torch.zeros_like(units).index_add_(0, tokens, y)


def grouped_mm_supported(units: torch.Tensor, w1: torch.Tensor) -> bool:
    """Whether ``dispatch_experts`` can use ``torch.nn.functional.grouped_mm``: eager float32 on CPU
    outside autocast (the grouped product is not autocast, the bias mixture would be), rows of a
    multiple of 16 bytes (the kernel's stride rule), on a PyTorch that has a CPU kernel for it. CUDA
    keeps the loop: its grouped kernels take bf16 in layouts this module does not guarantee."""
    row_bytes = (w1.shape[1] * w1.element_size(), w1.shape[2] * w1.element_size())  # H and D
    return (units.device.type == "cpu" and units.dtype == w1.dtype == torch.float32 and all(b % 16 == 0 for b in row_bytes)
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling() and _cpu_grouped_mm_works())


@functools.cache
def _cpu_grouped_mm_works() -> bool:
    """One tiny float32 grouped product and its backward on CPU, checked against the per-group products
    (with gradients whatever mode the first caller is in: an evaluation pass may be the first)."""
    if not hasattr(F, "grouped_mm"):
        return False
    with torch.inference_mode(False), torch.enable_grad():
        a = torch.arange(12.0, dtype=torch.float32, device="cpu").view(3, 4).requires_grad_(True)
        b = torch.arange(32.0, dtype=torch.float32, device="cpu").view(2, 4, 4).requires_grad_(True)
        try:
            out = F.grouped_mm(a, b, offs=torch.tensor([1, 3], dtype=torch.int32, device="cpu"))
            out.backward(torch.ones_like(out))
        except (RuntimeError, NotImplementedError):
            return False
    with torch.no_grad():
        expected = torch.cat([a[:1] @ b[0], a[1:] @ b[1]])
        grad_a = torch.cat([b[0].sum(1).expand(1, 4), b[1].sum(1).expand(2, 4)])
        return (bool(torch.equal(out, expected)) and bool(torch.equal(b.grad[1], a[1:].sum(0).unsqueeze(1).expand(4, 4)))
                and bool(torch.equal(a.grad, grad_a)))


def bound_delta(delta: torch.Tensor, hidden: torch.Tensor, ratio: float) -> torch.Tensor:
    """Scale each token's delta down so that ``||delta|| <= ratio * ||hidden||`` (unchanged below it).

    delta, hidden: (B, T, H). The scale is ``min(1, ratio ||h|| / ||delta||)``, differentiable.
    """
    limit = ratio * hidden.norm(dim=-1, keepdim=True)
    norm = delta.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return delta * torch.clamp(limit / norm, max=1.0)
