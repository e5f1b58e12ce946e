"""Episodic replay buffer with reservoir sampling and bounded teacher storage (spec §3.5, §5.1).

Storage is preallocated on the model's device. Which slots an incoming batch overwrites is decided on the
host from a seeded CPU generator, so writing never waits on the device.

Inputs: token ids are kept as int32 (C, T); float feature vectors (the classification benchmarks) as
(C, D) in their own dtype. The input storage starts in the token form and takes the form of the first
batch offered when that differs (one buffer holds one form). ``seq_len`` is the label length L of
every episode: T for tokens, the output heads for a classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ReplaySample:
    input_ids: torch.Tensor  # (B, T) long token ids, or (B, D) float features
    labels: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor | None  # (B, T) bool
    teacher: torch.Tensor | None  # (B, T, V) or (B, T, K) logits; None when the buffer keeps no teachers
    teacher_indices: torch.Tensor | None  # (B, T, K) vocabulary ids of a top-k teacher
    task_ids: torch.Tensor  # (B,)
    slots: torch.Tensor | None = None  # (B,) the buffer slots gathered (None for a batch built elsewhere)
    base_targets: torch.Tensor | None = None  # (B,) cached neocortex-only gate targets, NaN = stale (see ReplayBuffer)


def reservoir_slots(n_seen: int, batch: int, capacity: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """(element index in batch, slot) pairs for ``batch`` new items after ``n_seen`` seen so far.

    Algorithm R: item number n (0-based) goes to slot n while the buffer fills, then to slot j ~ U{0..n}
    if j < capacity. A later element overwriting the same slot wins, as in the sequential algorithm.
    """
    draws = torch.rand(batch, generator=generator, dtype=torch.float64).tolist()
    chosen: dict[int, int] = {}
    for i, u in enumerate(draws):
        n = n_seen + i
        slot = n if n < capacity else int(u * (n + 1))
        if slot < capacity:
            chosen[slot] = i
    return [(i, slot) for slot, i in chosen.items()]


class ReplayBuffer:
    def __init__(
        self,
        *,
        capacity: int,
        seq_len: int,
        vocab_size: int,
        top_k_experts: int,
        teacher_storage: str,
        teacher_topk: int,
        device: torch.device,
        seed: int,
        with_attention_mask: bool,
        base_targets: bool = False,
    ) -> None:
        self.capacity, self.teacher_storage = capacity, teacher_storage
        self.teacher_topk = min(teacher_topk, vocab_size)
        self.n_seen = 0
        self.generator = torch.Generator().manual_seed(seed)
        C, T = capacity, seq_len
        width = vocab_size if teacher_storage == "full" else self.teacher_topk
        index_dtype = torch.int16 if vocab_size <= 32767 else torch.int32
        self.tensors: dict[str, torch.Tensor] = {
            "input_ids": torch.zeros(C, T, dtype=torch.int32, device=device),  # replaced by (C, D) for features
            "labels": torch.full((C, T), -100, dtype=torch.int32, device=device),
            "task_ids": torch.zeros(C, dtype=torch.int32, device=device),
            "steps": torch.full((C,), -1, dtype=torch.int64, device=device),
        }
        if top_k_experts:
            self.tensors["experts"] = torch.full((C, top_k_experts), -1, dtype=torch.int16, device=device)
        if teacher_storage != "none":
            self.tensors["teacher"] = torch.zeros(C, T, width, dtype=torch.float16, device=device)
        if teacher_storage == "topk":
            self.tensors["teacher_indices"] = torch.zeros(C, T, width, dtype=index_dtype, device=device)
        if with_attention_mask:
            self.tensors["attention_mask"] = torch.zeros(C, T, dtype=torch.bool, device=device)
        if base_targets:  # float32: the slow path's own values (k / n), NaN until computed
            self.tensors["base_targets"] = torch.full((C,), float("nan"), device=device)

    def __len__(self) -> int:
        return min(self.n_seen, self.capacity)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def bytes_per_episode(self) -> int:
        return self.nbytes() // self.capacity

    @torch.no_grad()
    def add(
        self,
        *,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        attention_mask: torch.Tensor | None,
        task_id: int,
        step: int,
        teacher_logits: torch.Tensor | None = None,
        experts: torch.Tensor | None = None,
        base_targets: torch.Tensor | None = None,
    ) -> None:
        """Offer every sequence of a batch as an episode; the teacher is the (B, T, V) combined logits
        (None, and no experts, for a buffer that keeps neither: ``teacher_storage="none"``, no experts).
        ``base_targets`` (B,): the episodes' neocortex-only gate targets, for a buffer that caches them
        (without them a stored episode's cache entry is stale)."""
        B = input_ids.shape[0]
        self._fit_inputs(input_ids)
        pairs = reservoir_slots(self.n_seen, B, self.capacity, self.generator)
        self.n_seen += B
        if not pairs:
            return
        device = self.tensors["input_ids"].device
        row_list, slot_list = [i for i, _ in pairs], [s for _, s in pairs]
        rows: slice | torch.Tensor
        slots: slice | torch.Tensor
        if row_list == list(range(len(pairs))) and slot_list == list(range(slot_list[0], slot_list[0] + len(pairs))):
            # Filling: the batch goes to consecutive slots, so copies into slices replace gathers and scatters.
            rows, slots = slice(0, len(pairs)), slice(slot_list[0], slot_list[0] + len(pairs))
        else:
            rows, slots = torch.tensor(row_list, device=device), torch.tensor(slot_list, device=device)
        t = self.tensors
        t["input_ids"][slots] = input_ids[rows].to(t["input_ids"].dtype)
        t["labels"][slots] = labels[rows].to(torch.int32)
        t["task_ids"][slots] = task_id
        t["steps"][slots] = step
        if "experts" in t:
            t["experts"][slots] = experts[rows].to(torch.int16)
        if attention_mask is not None and "attention_mask" in t:
            t["attention_mask"][slots] = attention_mask[rows].bool()
        if "base_targets" in t:
            t["base_targets"][slots] = float("nan") if base_targets is None else base_targets[rows].float()
        if self.teacher_storage == "none":
            return
        self.write_teachers(slots, teacher_logits[rows])

    @torch.no_grad()
    def write_teachers(self, slots: torch.Tensor | slice, logits: torch.Tensor) -> None:
        """Store (N, T, V) logits as the teachers of ``slots`` (top-k or full, fp16)."""
        t = self.tensors
        if self.teacher_storage == "topk":
            values, indices = logits.float().topk(self.teacher_topk, dim=-1)
            t["teacher"][slots] = values.half()
            t["teacher_indices"][slots] = indices.to(t["teacher_indices"].dtype)
        else:
            t["teacher"][slots] = logits.half()

    @property
    def caches_base_targets(self) -> bool:
        """Whether the buffer keeps each episode's neocortex-only gate target (``wake.gate_targets``).

        While awake the neocortex is frozen, so that target is a function of the episode until the next
        sleep: the wake step computes it once (when the episode is stored or first replayed) and the
        learner calls ``invalidate_base_targets`` after every sleep."""
        return "base_targets" in self.tensors

    @torch.no_grad()
    def write_base_targets(self, slots: torch.Tensor, values: torch.Tensor) -> None:
        """Cache (N,) gate targets for ``slots``."""
        self.tensors["base_targets"][slots] = values.float()

    def invalidate_base_targets(self) -> None:
        """The neocortex changed (a sleep): every cached gate target is stale."""
        if self.caches_base_targets:
            self.tensors["base_targets"].fill_(float("nan"))

    def teacher_argmax(self, index: torch.Tensor | slice) -> torch.Tensor:
        """(N, T) the stored teachers' argmax (top-k storage keeps them sorted: entry 0 is the argmax)."""
        if self.teacher_storage == "topk":
            return self.tensors["teacher_indices"][index][..., 0].long()
        return self.tensors["teacher"][index].float().argmax(-1)

    def _fit_inputs(self, input_ids: torch.Tensor) -> None:
        """Make the input storage hold ``input_ids``' form: int32 for token ids, the batch's dtype for features."""
        store = self.tensors["input_ids"]
        dtype = input_ids.dtype if input_ids.is_floating_point() else torch.int32
        if store.dtype == dtype and store.shape[1:] == input_ids.shape[1:]:
            return
        if self.n_seen:
            raise ValueError(f"the replay buffer holds inputs of shape {tuple(store.shape[1:])} ({store.dtype}); "
                             f"got {tuple(input_ids.shape[1:])} ({input_ids.dtype})")
        self.tensors["input_ids"] = torch.zeros((self.capacity, *input_ids.shape[1:]), dtype=dtype, device=store.device)

    def sample(self, batch_size: int) -> ReplaySample:
        """A shuffled batch drawn uniformly without replacement (with replacement if the buffer is smaller)."""
        size = len(self)
        if size >= batch_size:
            index = torch.randperm(size, generator=self.generator)[:batch_size]
        else:
            index = torch.randint(0, size, (batch_size,), generator=self.generator)
        return self.gather(index.to(self.tensors["input_ids"].device))

    def gather(self, index: torch.Tensor) -> ReplaySample:
        t = self.tensors
        inputs = t["input_ids"][index]
        return ReplaySample(
            input_ids=inputs if inputs.is_floating_point() else inputs.long(),
            labels=t["labels"][index].long(),
            attention_mask=t["attention_mask"][index] if "attention_mask" in t else None,
            teacher=t["teacher"][index] if "teacher" in t else None,
            teacher_indices=t["teacher_indices"][index].long() if "teacher_indices" in t else None,
            task_ids=t["task_ids"][index],
            slots=index,
            base_targets=t["base_targets"][index] if "base_targets" in t else None,
        )

    def recent_episodes_of(self, num_experts: int, per_expert: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For each expert, its most recent routed episodes: indices (E, P) and validity (E, P)."""
        t = self.tensors
        routed = (t["experts"].long().unsqueeze(-1) == torch.arange(num_experts, device=t["experts"].device)).any(1)  # (C, E)
        score = torch.where(routed, t["steps"].unsqueeze(-1), torch.full_like(t["steps"].unsqueeze(-1), -1))  # (C, E)
        P = min(per_expert, self.capacity)
        top_score, top_index = score.t().topk(P, dim=-1)  # (E, P)
        return top_index, top_score >= 0

    def state_dict(self) -> dict:
        return {"n_seen": self.n_seen, "generator": self.generator.get_state(), **{f"t.{k}": v for k, v in self.tensors.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.n_seen = int(state["n_seen"])
        self.generator.set_state(state["generator"])
        for k, v in list(self.tensors.items()):
            if k == "base_targets" and f"t.{k}" not in state:  # a checkpoint from before the cache: all stale
                v.fill_(float("nan"))
                continue
            saved = state[f"t.{k}"]
            if k == "input_ids" and (saved.shape != v.shape or saved.dtype != v.dtype):  # feature inputs
                self.tensors[k] = saved.to(v.device, copy=True)
            else:
                v.copy_(saved)
