"""Data parallelism across ranks of a torch.distributed process group: the engine's one seam to it.

A run with world size W splits every global batch into W equal shards of rows, one per rank. Each
rank's loss is its *share of the global loss* (``share``: a term averaged over the rank's rows is
weighted by ``local rows / global rows``), and gradients are **summed** across ranks
(``sum_gradients``: one flat all-reduce per optimizer step), so the summed gradient is the gradient
of the global batch's loss, as one process would compute it. Batch statistics that a loss or a
decision reads (accuracy for the reward, routing counts, evaluation sums) are reduced first, so every
rank holds the same numbers and takes the same decisions; a decision that must never diverge
(sleep now?) is in addition taken from rank 0 (``agree``).

The process group is started by whoever runs the engine (the platform: Ray Train's ``TorchTrainer``,
gloo on CPU, nccl on GPU; tests: ``torch.multiprocessing``); this module never starts one and never
imports Ray (nor torch, until a collective runs). ``SINGLE`` (W = 1) makes every helper the identity: a single-process run executes exactly
the arithmetic it did before data parallelism existed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a collective runs: importing this module stays cheap (config show)
    import torch


def shard_bounds(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank ``rank``'s rows in ``total`` rows split as evenly as possible (first ranks +1)."""
    base, extra = divmod(total, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


@dataclass(eq=False)  # identity: one object per process, shared by everything it times
class Distributed:
    """Rank and world size of this process, and the collectives the engine needs (identity at W = 1).

    Host time spent inside collectives is counted in ``comm_s`` (on CPU gloo that includes waiting for
    the slower rank; on CUDA it is the enqueue time unless the caller synchronises).
    """

    rank: int = 0
    world_size: int = 1
    backend: str = "none"  # the process group's: gloo (CPU tensors) or nccl (CUDA tensors)
    comm_s: float = 0.0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_process_group(cls) -> Distributed:
        """This process's rank in the initialised default process group (W = 1 when there is none)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        return cls(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))

    # ---- shards -------------------------------------------------------------------------------
    def rows(self, total: int) -> slice:
        """This rank's rows of a global batch of ``total`` rows (``check_divisible`` made them equal)."""
        start, stop = shard_bounds(total, self.rank, self.world_size)
        return slice(start, stop)

    def check_divisible(self, name: str, size: int) -> None:
        """Global batches must split into equal shards, or the ranks' shares of the loss would differ."""
        if size % self.world_size:
            raise ValueError(f"{name}={size} does not split into {self.world_size} equal data-parallel shards")

    def share(self, term: torch.Tensor, local: int, total: int) -> torch.Tensor:
        """A loss term averaged over this rank's ``local`` rows, as its part of the mean over ``total``."""
        if not self.parallel:
            return term
        if local == 0:  # a mean over no rows is NaN: this rank adds nothing (its graph stays connected)
            return term.nan_to_num(0.0) * 0.0
        return term * (local / total)

    # ---- collectives --------------------------------------------------------------------------
    def _comm(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` where the backend can reduce it (nccl: on this process's CUDA device)."""
        if self.backend == "nccl" and tensor.device.type != "cuda":
            import torch

            return tensor.to(torch.device("cuda", torch.cuda.current_device()))
        return tensor

    @contextmanager
    def _timed(self) -> Iterator[None]:
        """Count the host time of the collective inside the block in ``comm_s``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.comm_s += time.perf_counter() - started

    def _timed_all_reduce(self, buffer: torch.Tensor) -> None:
        import torch.distributed as dist

        with self._timed():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)

    def sum_gradients(
        self, params: Sequence[torch.nn.Parameter], extras: Sequence[torch.Tensor] = (),
        rows: Mapping[torch.nn.Parameter, torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Sum ``params``' ``.grad`` across ranks in place (a missing grad counts as zeros and is created);
        ``extras`` (tensors, e.g. the loss) ride in the same all-reduce and come back summed (W > 1:
        float32, in their shapes; W = 1: as passed).

        ``rows[p]``: the only rows (dim 0) of ``p``'s gradient that can be nonzero on any rank (the experts
        the global batch was routed to): only those travel; the others are zero everywhere already."""
        if not self.parallel:
            return list(extras)
        import torch

        rows = rows or {}
        grads, views = [], []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
            views.append(p.grad.index_select(0, rows[p]) if p in rows else p.grad)
        device = grads[0].device if grads else extras[0].device
        riders = [torch.as_tensor(e, device=device) for e in extras]
        flat = self._comm(torch.cat([v.reshape(-1).float() for v in views + riders]))  # one collective per optimizer step
        self._timed_all_reduce(flat)
        offset = 0
        for p, g, v in zip(params, grads, views, strict=True):
            summed = flat[offset : offset + v.numel()].view_as(v)
            if p in rows:
                g.index_copy_(0, rows[p], summed.to(g.dtype))
            else:
                g.copy_(summed)
            offset += v.numel()
        rest = flat[offset:].to(device).split([e.numel() for e in riders])
        return [part.view_as(e) for part, e in zip(rest, riders, strict=True)]

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The elementwise sum of ``tensor`` over ranks (a new tensor; ``tensor`` itself at W = 1)."""
        if not self.parallel:
            return tensor
        out = self._comm(tensor.clone())
        self._timed_all_reduce(out)
        return out.to(tensor.device)

    def all_reduce_many(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The elementwise sums of several tensors over ranks, in one collective (new tensors, in their
        shapes and dtypes; the tensors themselves at W = 1)."""
        if not self.parallel:
            return list(tensors)
        import torch

        flat = self.all_reduce_sum(torch.cat([t.reshape(-1).float() for t in tensors]))
        return [part.view_as(t).to(t.dtype) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors, strict=True)]

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """(W, *shape): every rank's ``tensor`` (same shape on all ranks), in rank order."""
        return self.start_all_gather(tensor)()

    def start_all_gather(self, tensor: torch.Tensor) -> Callable[[], torch.Tensor]:
        """``all_gather`` started; the returned function waits for it and returns its (W, *shape) result."""
        if not self.parallel:
            done = tensor.unsqueeze(0)
            return lambda: done
        import torch
        import torch.distributed as dist

        local = self._comm(tensor.contiguous())
        out = [torch.empty_like(local) for _ in range(self.world_size)]
        with self._timed():
            work = dist.all_gather(out, local, async_op=True)

        def finish() -> torch.Tensor:
            with self._timed():
                work.wait()
            return torch.stack(out).to(tensor.device)

        return finish

    def agree(self, value: float) -> float:
        """Rank 0's ``value`` on every rank: a decision that must be the same everywhere is rank 0's."""
        if not self.parallel:
            return value
        import torch
        import torch.distributed as dist

        buffer = self._comm(torch.tensor([value], dtype=torch.float64))
        with self._timed():
            dist.broadcast(buffer, src=0)
        return float(buffer.item())

    def barrier(self) -> None:
        if self.parallel:
            import torch.distributed as dist

            dist.barrier()


SINGLE = Distributed()
