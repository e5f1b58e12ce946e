"""`biollm bench ddp`: what data parallelism buys, W = 1 against W ranks, in one command.

Each world size runs in its own local process group (``local_group.run_group``: spawned processes,
gloo on CPU, one torch thread per rank unless told otherwise), the method built by the runner's own
builder (``build_method`` with the group's ``Distributed``). Every rank times, after ``warmup``
untimed steps:

- training steps: ``observe`` on its shard of the stream's global batch (``train.batch_size``, split
  across ranks as the runner splits it), for cls the wake step;
- consolidation steps (methods that have ``consolidate_once``: cls): one sleep step on this rank's
  part of a ``replay.batch_size`` replay sample;

and the host time it spent inside collectives (``Distributed.comm_s``: the all-reduce of the
gradients and the statistics; on CPU gloo this includes waiting for the slower rank). A step's time
is the slowest rank's; tokens/s counts the global batch. ``compare_ddp`` times one fine-tuning step
of the neocortex with torch's ``DistributedDataParallel`` against the engine's explicit summed
all-reduce at the same world size (how the engine's choice was measured).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from biollm_platform.bench.local_group import run_group

TARGET = "biollm_platform.bench.ddp"


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def _rank_setup(overrides: list[str]) -> tuple[Any, Any, Any, Any]:
    """(config, device, precision, benchmark) of a rank target's run, as the runner builds them."""
    from biollm_core import builders
    from biollm_core.config.loader import load_config
    from biollm_core.device import pick_device
    from biollm_core.runner import seed_everything

    config = load_config(overrides)
    seed_everything(config.seed)  # as the runner: every rank starts from the same weights
    device = pick_device(config.device)
    return config, device, builders.build_precision(config, device), builders.build_benchmark(config)


def time_rank(*, distributed: Any, overrides: list[str], steps: int, warmup: int) -> dict[str, Any]:
    """One rank's timings (target of ``run_group``)."""
    import torch

    from biollm_core.methods import MethodContext, build_method

    config, device, precision, bench = _rank_setup(overrides)
    dp = distributed
    heldout = bench.heldout(0)
    context = MethodContext(bench, device, precision, heldout.labels.shape[1], heldout.attention_mask is not None, dp)
    method = build_method(config, context)
    B = config.train.batch_size
    dp.check_divisible("train.batch_size", B)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step_s, comm_s = [], []
    for index in range(warmup + steps):
        batch = bench.train_batch(index, B).rows(dp.rows(B)).to(device)
        sync()
        started, comm = time.perf_counter(), dp.comm_s
        method.observe(batch, index)
        sync()
        if index >= warmup:
            step_s.append(time.perf_counter() - started)
            comm_s.append(dp.comm_s - comm)
    result: dict[str, Any] = {"rank": dp.rank, "step_ms": _median_ms(step_s), "comm_ms": _median_ms(comm_s),
                              "step_total_s": sum(step_s), "tokens_per_step": B * heldout.input_ids.shape[1],
                              "device": str(device), "torch_threads": torch.get_num_threads()}
    consolidate = getattr(method, "consolidate_once", None)
    replay = getattr(method, "replay", None)
    if consolidate is not None and replay is not None and len(replay):
        sleep_s, sleep_comm = [], []
        for index in range(warmup + steps):
            sample = replay.sample(config.replay.batch_size)
            sync()
            started, comm = time.perf_counter(), dp.comm_s
            consolidate(sample)
            sync()
            if index >= warmup:
                sleep_s.append(time.perf_counter() - started)
                sleep_comm.append(dp.comm_s - comm)
        result |= {"sleep_step_ms": _median_ms(sleep_s), "sleep_comm_ms": _median_ms(sleep_comm),
                   "sleep_tokens_per_step": config.replay.batch_size * heldout.input_ids.shape[1]}
    return result


def time_ddp_against_allreduce(*, distributed: Any, overrides: list[str], steps: int, warmup: int) -> dict[str, float]:
    """One fine-tuning step of the whole neocortex on this rank's shard: DDP against summed all-reduce."""
    import torch
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel

    from biollm_core import builders
    from biollm_core.methods.supervised import NeocortexLearner, label_loss

    config, device, precision, bench = _rank_setup(overrides)
    dp = distributed
    B = config.train.batch_size

    class Whole(torch.nn.Module):  # DDP hooks the module's forward: encode and decode as one call
        def __init__(self, neocortex: Any) -> None:
            super().__init__()
            self.neocortex = neocortex

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.neocortex.decode(self.neocortex.encode(x))

    def learner() -> NeocortexLearner:
        model = builders.build_device_neocortex(config, bench.input_vocab_size, device, precision)
        return NeocortexLearner(model, lr=config.train.lr, weight_decay=config.train.weight_decay, precision=precision,
                                distributed=dp)

    explicit = learner()
    wrapped = learner()
    ddp = DistributedDataParallel(Whole(wrapped.neocortex), broadcast_buffers=False)
    times: dict[str, list[float]] = {"allreduce": [], "ddp": []}
    for index in range(warmup + steps):  # interleaved: load from other processes hits both alike
        batch = bench.train_batch(index, B).rows(dp.rows(B)).to(device)
        started = time.perf_counter()
        loss = label_loss(explicit.logits(batch.input_ids, None), batch.labels)
        explicit.step(explicit.share(loss, len(batch)))
        middle = time.perf_counter()
        logits = ddp(batch.input_ids)
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch.labels.flatten(), ignore_index=-100)
        wrapped.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP averages the gradients in buckets while the backward pass runs
        wrapped.optimizer.step()
        ended = time.perf_counter()
        if index >= warmup:
            times["allreduce"].append(middle - started)
            times["ddp"].append(ended - middle)
    return {"allreduce_step_ms": _median_ms(times["allreduce"]), "ddp_step_ms": _median_ms(times["ddp"])}


def combine_ranks(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """A world size's figures: each step as slow as its slowest rank; communication as rank 0 saw it."""
    first = ranks[0]
    out = {"step_ms": max(r["step_ms"] for r in ranks), "comm_ms": first["comm_ms"],
           "device": first["device"], "torch_threads": first["torch_threads"]}
    out["steps_per_s"] = 1e3 / out["step_ms"]
    out["tokens_per_s"] = first["tokens_per_step"] * out["steps_per_s"]
    if "sleep_step_ms" in first:
        out["sleep_step_ms"] = max(r["sleep_step_ms"] for r in ranks)
        out["sleep_comm_ms"] = first["sleep_comm_ms"]
        out["sleep_tokens_per_s"] = first["sleep_tokens_per_step"] * 1e3 / out["sleep_step_ms"]
    return out


def bench_ddp(overrides: list[str], *, workers: int = 2, steps: int = 30, warmup: int = 5, threads: int = 1,
              backend: str = "gloo", compare_ddp: bool = False) -> dict[str, Any]:
    """W = 1 and W = ``workers`` on the same config; ratios against W = 1."""
    sizes = sorted({1, workers})
    results = {}
    for size in sizes:
        ranks = run_group(size, f"{TARGET}:time_rank", backend=backend, threads=threads,
                          overrides=list(overrides), steps=steps, warmup=warmup)
        results[size] = combine_ranks(ranks)
    base = results[1]
    out: dict[str, Any] = {"overrides": list(overrides), "steps": steps, "warmup": warmup, "threads": threads,
                           "backend": backend, "world_sizes": {str(size): fig for size, fig in results.items()}}
    if workers > 1:
        top = results[workers]
        out["tokens_per_s_ratio"] = top["tokens_per_s"] / base["tokens_per_s"]
        if "sleep_tokens_per_s" in top:
            out["sleep_tokens_per_s_ratio"] = top["sleep_tokens_per_s"] / base["sleep_tokens_per_s"]
        if compare_ddp:
            ranks = run_group(workers, f"{TARGET}:time_ddp_against_allreduce", backend=backend, threads=threads,
                              overrides=list(overrides), steps=steps, warmup=warmup)
            out["ddp"] = {k: max(r[k] for r in ranks) for k in ranks[0]}
    return out
