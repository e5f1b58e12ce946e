"""A torch.distributed group of local processes, without Ray: for ``biollm bench ddp`` and the tests.

``run_group(W, target, **kwargs)`` starts W processes (``spawn``), joins them in one process group
(gloo on CPU; nccl when ``backend="nccl"``), calls ``target(distributed=<Distributed>, **kwargs)`` on
each and returns every rank's result, in rank order. ``target`` is ``module:function`` or
``/path/file.py:function`` (a test's own file), so it need not be importable by name. A rank that
raises fails the whole call with its traceback; a rank that dies makes the others' collectives time
out (``timeout_s``) instead of hanging for ever.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import socket
import traceback
from datetime import timedelta
from typing import Any

from biollm_core.errors import UserError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_target(target: str) -> Any:
    """A rank's target: ``module:function`` or ``/path/file.py:function`` (the sinks' loader)."""
    from biollm_platform.sweep.extra_sinks import load_target as load

    return load(target, prefix="biollm_group")


def _rank_main(rank: int, world_size: int, port: int, backend: str, threads: int, timeout_s: float,
               target: str, kwargs: dict[str, Any], results: Any) -> None:
    try:
        import torch
        import torch.distributed as dist

        from biollm_core.distributed import Distributed

        torch.set_num_threads(threads)
        if backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout_s))
        try:
            result = load_target(target)(distributed=Distributed.from_process_group(), **kwargs)
        finally:
            dist.destroy_process_group()
        results.put((rank, True, result))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        results.put((rank, False, traceback.format_exc()))


def run_group(world_size: int, target: str, *, backend: str = "gloo", threads: int = 1, timeout_s: float = 300,
              **kwargs: Any) -> list[Any]:
    """Every rank's ``target(distributed=..., **kwargs)`` (picklable results), in rank order."""
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [
        context.Process(target=_rank_main, args=(rank, world_size, port, backend, threads, timeout_s, target, kwargs, results))
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    outcomes: dict[int, tuple[bool, Any]] = {}
    try:
        while len(outcomes) < world_size:
            try:
                rank, ok, value = results.get(timeout=1.0)
            except queue.Empty:  # a rank that died without a word: say so rather than wait
                for rank, process in enumerate(processes):
                    if rank not in outcomes and process.exitcode not in (None, 0):
                        outcomes[rank] = (False, f"the process exited with code {process.exitcode}")
                continue
            outcomes[rank] = (ok, value)
    finally:
        for process in processes:
            process.join(timeout=timeout_s)
            if process.is_alive():
                process.kill()
    failed = [f"rank {rank}:\n{value}" for rank, (ok, value) in sorted(outcomes.items()) if not ok]
    if failed:
        raise UserError("a rank of the local process group failed:\n" + "\n".join(failed))
    return [outcomes[rank][1] for rank in range(world_size)]
