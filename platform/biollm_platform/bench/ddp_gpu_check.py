"""The prepared GPU check of data parallelism: the engine's data-parallel code path on CUDA with NCCL.

``python -m biollm_platform.bench.ddp_gpu_check [--out FILE] [--steps N]`` prints one JSON object:

- ``collectives``: in a one-rank NCCL group, the engine's ``Distributed`` collectives on the buffers it
  uses (float32 gradients on the GPU, float64 statistics built on the CPU and moved to the GPU) give
  back what they were given, and how long one takes;
- ``w1``: ``biollm bench ddp``'s per-rank timings at W = 1 on CUDA (``train=mac_dev`` size, cls wake
  and sleep steps), the group started with NCCL exactly as Ray Train's TorchTrainer starts it;
- ``w2`` (only with 2 or more GPUs): the same at W = 2, one GPU a rank, and the tokens/s ratio.

No Ray: ``local_group.run_group`` starts the processes. It exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from biollm_platform.bench.ddp import combine_ranks
from biollm_platform.bench.local_group import run_group

CUDA_MAC_DEV = ["train=mac_dev", "device=cuda", "method=cls", "replay.capacity=512"]


def check_collectives(*, distributed: Any) -> dict[str, Any]:
    """The helpers' NCCL path with a one-rank group (identity sums; a forced world size would deadlock)."""
    import torch
    import torch.distributed as dist

    from biollm_core.distributed import Distributed

    assert dist.get_backend() == "nccl", dist.get_backend()
    forced = Distributed(distributed.rank, distributed.world_size, "nccl")
    grads = torch.randn(1 << 20, device="cuda")
    stats = torch.arange(6, dtype=torch.float64)  # built on the host, as the wake step's are
    moved = forced._comm(stats.clone())
    started = time.perf_counter()
    forced._timed_all_reduce(grads)
    torch.cuda.synchronize()
    all_reduce_ms = (time.perf_counter() - started) * 1e3
    forced._timed_all_reduce(moved)
    gathered = [torch.empty_like(moved)]
    dist.all_gather(gathered, moved)
    buffer = moved.clone()
    dist.broadcast(buffer, src=0)
    ok = moved.device.type == "cuda" and torch.equal(moved.cpu(), stats) and torch.equal(gathered[0].cpu(), stats)
    return {"ok": bool(ok and torch.equal(buffer.cpu(), stats)), "all_reduce_4MiB_ms": all_reduce_ms,
            "device": torch.cuda.get_device_name()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    import torch

    result: dict[str, Any] = {"gpus": torch.cuda.device_count(), "overrides": CUDA_MAC_DEV}
    result["collectives"] = run_group(1, "biollm_platform.bench.ddp_gpu_check:check_collectives", backend="nccl")[0]
    timing = {"overrides": CUDA_MAC_DEV, "steps": args.steps, "warmup": args.warmup}
    result["w1"] = combine_ranks(run_group(1, "biollm_platform.bench.ddp:time_rank", backend="nccl", threads=4, **timing))
    if torch.cuda.device_count() >= 2:
        result["w2"] = combine_ranks(run_group(2, "biollm_platform.bench.ddp:time_rank", backend="nccl", threads=4, **timing))
        result["w2_tokens_per_s_ratio"] = result["w2"]["tokens_per_s"] / result["w1"]["tokens_per_s"]
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["collectives"]["ok"] and result["w1"]["device"].startswith("cuda") else 1


if __name__ == "__main__":
    sys.exit(main())
