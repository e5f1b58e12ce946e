"""Episodic replay buffer with reservoir sampling and bounded teacher storage (spec §3.5, §5.1).

Storage is preallocated on the model's device. Which slots an incoming batch overwrites is decided on the
host from a seeded CPU generator, so writing never waits on the device.

Inputs: token ids are kept as int32 (C, T); float feature vectors (the classification benchmarks) as
(C, D) in their own dtype. The input storage starts in the token form and takes the form of the first
batch offered when that differs (one buffer holds one form). ``seq_len`` is the label length L of
every episode: T for tokens, the output heads for a classifier.

Data parallel (``distributed`` with W ranks): the reservoir stays one global buffer of ``capacity``
slots. Every rank draws the same slot decisions and samples from the same generator over the same
global batches, so which episodes the buffer holds and which a sample draws do not depend on W; the
per-slot records (step, task, experts, cached gate target: small) are kept by every rank, and an
episode's payload (inputs, labels, teacher) only by the rank that saw it (``replay_shard.py``). A
sample then gives each rank the drawn episodes it holds, in the sample's order;
``ReplaySample.positions`` says where they stand in it.
"""

from __future__ import annotations

import torch

from biollm_core.distributed import SINGLE, Distributed
from biollm_core.rank_state import RANK_LOCAL
from biollm_core.replay_sample import ReplaySample, reservoir_slots
from biollm_core.replay_shard import ShardMap, initial_rows

PAYLOAD = ("input_ids", "labels", "attention_mask", "teacher", "teacher_indices")  # on the rank that saw it


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
        distributed: Distributed = SINGLE,
        base_targets: bool = False,
    ) -> None:
        self.capacity, self.teacher_storage = capacity, teacher_storage
        self.teacher_topk = min(teacher_topk, vocab_size)
        self.n_seen = 0
        self.generator = torch.Generator().manual_seed(seed)  # the same on every rank: shared slot decisions
        self.distributed = distributed
        self.shard = ShardMap(capacity, initial_rows(capacity, distributed.world_size)) if distributed.parallel else None
        C, T = capacity, seq_len
        L = capacity if self.shard is None else self.shard.rows  # local payload rows
        width = vocab_size if teacher_storage == "full" else self.teacher_topk
        index_dtype = torch.int16 if vocab_size <= 32767 else torch.int32
        self.tensors: dict[str, torch.Tensor] = {
            "input_ids": torch.zeros(L, T, dtype=torch.int32, device=device),  # replaced by (L, D) for features
            "labels": torch.full((L, T), -100, dtype=torch.int32, device=device),
            "task_ids": torch.zeros(C, dtype=torch.int32, device=device),
            "steps": torch.full((C,), -1, dtype=torch.int64, device=device),
        }
        if top_k_experts:
            self.tensors["experts"] = torch.full((C, top_k_experts), -1, dtype=torch.int16, device=device)
        if teacher_storage != "none":
            self.tensors["teacher"] = torch.zeros(L, T, width, dtype=torch.float16, device=device)
        if teacher_storage == "topk":
            self.tensors["teacher_indices"] = torch.zeros(L, T, width, dtype=index_dtype, device=device)
        if with_attention_mask:
            self.tensors["attention_mask"] = torch.zeros(L, T, dtype=torch.bool, device=device)
        if base_targets:  # float32: the slow path's own values (k / n), NaN until computed; a per-slot record on every rank
            self.tensors["base_targets"] = torch.full((C,), float("nan"), device=device)

    def __len__(self) -> int:
        """Episodes in the (global) buffer."""
        return min(self.n_seen, self.capacity)

    def nbytes(self) -> int:
        """Bytes of the episodic memory, all ranks' shards together (the same at every world size)."""
        return self.bytes_per_episode() * self.capacity

    def bytes_per_episode(self) -> int:
        """What the memory keeps of an episode. The gate-target cache (4 bytes a slot) is not episodic
        memory: the frozen neocortex derives it from the episode and every sleep drops it; counting it
        would make the memory figure depend on a wake-path option at equal capacity."""
        return sum(t[0].numel() * t.element_size() for k, t in self.tensors.items() if k != "base_targets")

    def local_nbytes(self) -> int:
        """Bytes this rank allocated (its payload rows and the shared per-slot records)."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

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
        (without them a stored episode's cache entry is stale).

        Data parallel: the arguments are this rank's shard of the global batch (equal shards), except
        ``experts`` and ``base_targets``, which cover the whole global batch (every rank keeps every
        slot's experts and cached gate target)."""
        B = input_ids.shape[0] * self.distributed.world_size
        self._fit_inputs(input_ids)
        pairs = reservoir_slots(self.n_seen, B, self.capacity, self.generator)
        self.n_seen += B
        if not pairs:
            return
        if self.shard is not None:
            self._add_shard(pairs, input_ids, labels, attention_mask, task_id, step, teacher_logits, experts, base_targets)
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

    def _add_shard(self, pairs: list[tuple[int, int]], input_ids: torch.Tensor, labels: torch.Tensor,
                   attention_mask: torch.Tensor | None, task_id: int, step: int, teacher_logits: torch.Tensor | None,
                   experts: torch.Tensor | None, base_targets: torch.Tensor | None) -> None:
        """The data-parallel ``add``: every rank records every slot; the owner of an episode stores it."""
        t, b, rank = self.tensors, input_ids.shape[0], self.distributed.rank
        device = t["steps"].device
        slots = torch.tensor([s for _, s in pairs], device=device)
        batch_rows = torch.tensor([i for i, _ in pairs], device=device)  # rows of the global batch
        t["task_ids"][slots] = task_id
        t["steps"][slots] = step
        if "experts" in t:
            t["experts"][slots] = experts[batch_rows].to(torch.int16)
        if "base_targets" in t:
            t["base_targets"][slots] = float("nan") if base_targets is None else base_targets[batch_rows].float()
        local, rows = [], []
        for i, slot in pairs:
            row = self.shard.assign(slot, i // b == rank)
            if row == -1:
                self._grow()
                row = self.shard.assign(slot, True)
            if row is not None:
                local.append(i - rank * b)
                rows.append(row)
        if not rows:
            return
        src, dst = torch.tensor(local, device=device), torch.tensor(rows, device=device)
        t["input_ids"][dst] = input_ids[src].to(t["input_ids"].dtype)
        t["labels"][dst] = labels[src].to(torch.int32)
        if attention_mask is not None and "attention_mask" in t:
            t["attention_mask"][dst] = attention_mask[src].bool()
        if self.teacher_storage != "none":
            self.write_teachers(dst, teacher_logits[src])

    def _grow(self) -> None:
        """A quarter more local rows (never more than the capacity): the draws handed this rank more."""
        rows = min(self.capacity, self.shard.rows + max(1, self.shard.rows // 4))
        for name in PAYLOAD:
            if name in self.tensors:
                old = self.tensors[name]
                fill = -100 if name == "labels" else 0
                grown = torch.full((rows, *old.shape[1:]), fill, dtype=old.dtype, device=old.device)
                grown[: old.shape[0]] = old
                self.tensors[name] = grown
        self.shard.grow(rows)

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
        """Whether the buffer keeps each episode's neocortex-only gate target (``gate_supervision.gate_targets``).

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
        """(N, T) the stored teachers' argmax at local rows ``index`` (top-k storage keeps them sorted: entry 0 is the argmax)."""
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
        self.tensors["input_ids"] = torch.zeros((store.shape[0], *input_ids.shape[1:]), dtype=dtype, device=store.device)

    def sample(self, batch_size: int) -> ReplaySample:
        """A shuffled batch drawn uniformly without replacement (with replacement if the buffer is smaller).

        Data parallel: the same draw on every rank; each gets the drawn episodes it holds."""
        return self._sample_at(self._draw(batch_size))

    def _draw(self, batch_size: int) -> torch.Tensor:
        """(batch_size,) slots drawn from the shared generator (the same on every rank)."""
        size = len(self)
        if size >= batch_size:
            return torch.randperm(size, generator=self.generator)[:batch_size]
        return torch.randint(0, size, (batch_size,), generator=self.generator)

    def _sample_at(self, index: torch.Tensor) -> ReplaySample:
        """The drawn episodes at slots ``index`` that this rank holds, with their places in the draw."""
        if self.shard is None:
            return self.gather(index.to(self.tensors["input_ids"].device))
        rows = self._rows_of(index)
        held = (rows >= 0).nonzero().flatten()
        sample = self.gather_rows(rows[held].to(self.tensors["input_ids"].device))
        sample.positions = held.to(sample.input_ids.device)
        return sample

    def sample_even(self, batch_size: int) -> ReplaySample:
        """``sample(batch_size)`` cut into equal shares of rows, one per rank, whoever holds them: rank r
        gets the sample's rows ``distributed.rows(batch_size)``. Its inputs, labels and masks (not its
        teachers: ``teacher`` is None) travel in one all-reduce from the ranks that hold them,
        so no rank waits on another with more rows (a sample split by holder is uneven: 3 and 1 of 4
        half the time at W = 2); its slots and cached gate targets are the shared per-slot records
        (``sample_slots``: the whole sample's). W = 1: ``sample(batch_size)``, its ``sample_slots`` its slots."""
        index = self._draw(batch_size)
        sample = self._sample_at(index)
        if self.shard is None:
            sample.sample_slots = sample.slots
            return sample
        t, dp = self.tensors, self.distributed
        features, T = t["input_ids"].shape[1:].numel(), t["labels"].shape[1]
        masked = sample.attention_mask is not None
        pieces = [sample.input_ids.flatten(1), sample.labels, *([sample.attention_mask] if masked else [])]
        pack = torch.zeros(batch_size, sum(p.shape[1] for p in pieces), dtype=torch.float64, device=sample.labels.device)
        pack[sample.positions] = torch.cat([p.double() for p in pieces], 1)  # float64: ids and float32 features exactly
        mine = dp.all_reduce_sum(pack)[dp.rows(batch_size)]
        inputs, labels, rest = mine.split([features, T, mine.shape[1] - features - T], 1)  # rest: the masks
        floats = t["input_ids"].is_floating_point()
        every = index.to(mine.device)
        slots = every[dp.rows(batch_size)]
        return ReplaySample(
            input_ids=inputs.to(t["input_ids"].dtype).view(-1, *t["input_ids"].shape[1:]) if floats else inputs.long(),
            labels=labels.long(),
            attention_mask=rest.bool() if masked else None,
            teacher=None,
            teacher_indices=None,
            task_ids=t["task_ids"][slots],
            positions=torch.arange(batch_size, device=mine.device)[dp.rows(batch_size)],
            slots=slots, base_targets=t["base_targets"][slots] if "base_targets" in t else None, sample_slots=every,
        )

    def gather(self, index: torch.Tensor) -> ReplaySample:
        """The episodes at slots ``index`` that this rank holds (all of them at W = 1), in that order."""
        if self.shard is None:
            return self.gather_rows(index)
        rows = self._rows_of(index)
        return self.gather_rows(rows[rows >= 0].to(self.tensors["input_ids"].device))

    def held(self, index: torch.Tensor) -> torch.Tensor:
        """(N,) bool: whether this rank holds the episode at each slot of ``index``."""
        if self.shard is None:
            return torch.ones(index.shape, dtype=torch.bool, device=index.device)
        return (self._rows_of(index) >= 0).to(index.device)

    def _rows_of(self, index: torch.Tensor) -> torch.Tensor:
        """(N,) this rank's local row of each slot of ``index`` (-1: another rank holds it), on the host."""
        return torch.tensor([self.shard.row_of[s] for s in index.tolist()], dtype=torch.long)

    def local_rows(self) -> torch.Tensor:
        """The local rows holding episodes, in slot order (W = 1: every filled slot)."""
        device = self.tensors["input_ids"].device
        if self.shard is None:
            return torch.arange(len(self), device=device)
        return torch.tensor([r for r in self.shard.row_of if r >= 0], dtype=torch.long, device=device)

    def gather_rows(self, rows: torch.Tensor) -> ReplaySample:
        """The episodes in local rows ``rows``."""
        t = self.tensors
        slots = rows if self.shard is None else torch.tensor([self.shard.slot_of[r] for r in rows.tolist()], dtype=torch.long,
                                                             device=rows.device)
        inputs = t["input_ids"][rows]
        return ReplaySample(
            input_ids=inputs if inputs.is_floating_point() else inputs.long(),
            labels=t["labels"][rows].long(),
            attention_mask=t["attention_mask"][rows] if "attention_mask" in t else None,
            teacher=t["teacher"][rows] if "teacher" in t else None,
            teacher_indices=t["teacher_indices"][rows].long() if "teacher_indices" in t else None,
            task_ids=t["task_ids"][slots],
            slots=slots,
            base_targets=t["base_targets"][slots] if "base_targets" in t else None,
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
        """This rank's buffer: the shared records, its own payload rows and (data parallel) its slot map."""
        # Data parallel: RANK_LOCAL marks this rank's own state (rank_state.py checkpoints it per rank).
        shard = {} if self.shard is None else {RANK_LOCAL: True, "shard": self.shard.state_dict()}
        return {"n_seen": self.n_seen, "generator": self.generator.get_state(), **shard,
                **{f"t.{k}": v for k, v in self.tensors.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.n_seen = int(state["n_seen"])
        self.generator.set_state(state["generator"])
        if self.shard is not None:
            self.shard = ShardMap.from_state(self.capacity, state["shard"])
            for k in PAYLOAD:
                if k in self.tensors and self.tensors[k].shape[0] != self.shard.rows:
                    old = self.tensors[k]
                    self.tensors[k] = torch.empty((self.shard.rows, *old.shape[1:]), dtype=old.dtype, device=old.device)
        for k, v in list(self.tensors.items()):
            if k == "base_targets" and f"t.{k}" not in state:  # a checkpoint from before the cache: all stale
                v.fill_(float("nan"))
                continue
            saved = state[f"t.{k}"]
            if k == "input_ids" and (saved.shape != v.shape or saved.dtype != v.dtype):  # feature inputs
                self.tensors[k] = saved.to(v.device, copy=True)
            else:
                v.copy_(saved)
