"""`biollm bench engine`: what a CLS step costs next to plain fine-tuning of the same neocortex.

Everything is built by ``biollm_core.builders`` from the resolved run config and timed in one process,
interleaved repeat by repeat on the same batches, so that load from other processes hits every phase
alike and the ratios stay meaningful on a busy machine:

- plain: the baseline, one fine-tuning step of a copy of the neocortex (full forward, cross-entropy,
  backward, AdamW over all its parameters) at ``consolidation.slow_lr``; every optimizer here, the
  baseline's included, is built by ``builders.adamw`` (fused on CPU and CUDA), as the engine's are;
- wake: ``biollm_core.wake.wake_step`` (hippocampus trained through the frozen neocortex, teacher
  decode, replay add);
- sleep: ``biollm_core.sleep.sleep_step`` (distillation + online Fisher + EWC gradient + AdamW) on the
  episodes the wake step just stored, the same tokens as the plain step; ``sleep_replay_batch`` is the
  same step on a replay batch of ``replay.batch_size`` episodes, as sleep runs it;
- eval: ``biollm_core.evaluate.evaluate_tasks`` over every task's held-out set (base and combined).

Warm-up repeats are run and discarded; each figure is the median over ``repeats``. Ratios are ratios of
the medians. Peak memory is CUDA's ``max_memory_allocated`` on a GPU and the process's peak resident
set size elsewhere (it then includes Python, torch and everything loaded); it covers the baseline's copy.
"""

from __future__ import annotations

import copy
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from biollm_core import builders
from biollm_core.config.schema import RunConfig
from biollm_core.device import Precision, configure_precision, pick_device
from biollm_core.evaluate import evaluate_tasks
from biollm_core.protocols import Batch, Neocortex
from biollm_core.replay_buffer import ReplayBuffer, ReplaySample
from biollm_core.sleep import EwcState, sleep_step
from biollm_core.wake import wake_step


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """-> run(fn) returning fn's wall time in ms; waits for queued GPU work before reading the clock."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elif device.type == "mps":
            torch.mps.synchronize()

    def run(fn: Callable[[], object]) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return (time.perf_counter() - start) * 1e3

    return run


def _plain_step(model: Neocortex, optimizer: torch.optim.Optimizer, batch: Batch, precision: Precision) -> None:
    """The baseline: fine-tune every neocortex parameter on the batch's cross-entropy."""
    with precision.autocast():
        logits = model.decode(model.encode(batch.input_ids, batch.attention_mask), batch.attention_mask)  # (B, T, V)
    loss = F.cross_entropy(logits.float().flatten(0, 1), batch.labels.flatten(), ignore_index=-100)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _stored_episodes(replay: ReplayBuffer, first: int, count: int) -> ReplaySample:
    """The episodes offered as numbers ``first .. first+count-1``: while the buffer fills they sit in those slots."""
    if first + count <= replay.capacity:
        return replay.gather(torch.arange(first, first + count, device=replay.tensors["input_ids"].device))
    return replay.sample(count)  # a full buffer: the same number of other episodes


def peak_memory(device: torch.device) -> tuple[int, str]:
    """(bytes, what was measured)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024), "process_peak_rss"  # Linux reports KiB


def bench_engine(config: RunConfig, *, repeats: int = 10, warmup: int = 3, eval_repeats: int = 3) -> dict[str, Any]:
    """Time plain fine-tuning, wake, sleep and evaluation on the same batches; returns medians and ratios."""
    if repeats < 1 or warmup < 0 or eval_repeats < 1:
        raise ValueError("repeats and eval_repeats must be >= 1 and warmup >= 0")
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    t = config.train
    precision = configure_precision(
        device, amp_enabled=t.amp_enabled, amp_dtype=t.amp_dtype, allow_tf32=t.allow_tf32,
        matmul_precision=t.matmul_precision, deterministic=config.repro.deterministic, cudnn_benchmark=config.repro.cudnn_benchmark,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    bench = builders.build_benchmark(config)
    heldouts = [bench.heldout(task).to(device) for task in range(bench.num_tasks)]
    seq_len = heldouts[0].input_ids.shape[1]
    neocortex = builders.build_neocortex(config, bench.input_vocab_size).to(device)
    plain_model = copy.deepcopy(neocortex).requires_grad_(True)
    c = config.consolidation
    plain_opt = builders.adamw(plain_model.parameters(), lr=c.slow_lr, weight_decay=c.weight_decay)
    neocortex.requires_grad_(False)
    hippocampus = None if t.ablation_disable_hippocampus else builders.build_hippocampus(config, neocortex.hidden_size).to(device)
    fast_opt = None
    if hippocampus is not None:
        fast_opt = builders.adamw(hippocampus.parameters(), lr=config.experts.fast_lr, weight_decay=config.experts.weight_decay)
    consolidated = neocortex.consolidation_parameters()
    slow_opt = builders.adamw([p for _, p in consolidated], lr=c.slow_lr, weight_decay=c.weight_decay)
    base_opt = None
    if c.wake_base_lr_scale > 0:
        base_opt = builders.adamw([p for _, p in consolidated], lr=c.slow_lr * c.wake_base_lr_scale)
    fast_scaler, slow_scaler = precision.grad_scaler(), precision.grad_scaler()
    replay = builders.build_replay(config, seq_len, device, with_attention_mask=heldouts[0].attention_mask is not None)
    settings = builders.build_sleep_settings(config)
    ewc = EwcState(consolidated)
    run = _timer(device)
    times: dict[str, list[float]] = {"plain": [], "wake": [], "sleep": [], "sleep_replay_batch": [], "eval": []}

    def sleeping(sample_fn: Callable[[], ReplaySample]) -> Callable[[], object]:
        sample = sample_fn()  # drawn outside the timed region (the sleep loop draws it too: see sleep_replay_batch)
        return lambda: sleep_step(neocortex, slow_opt, slow_scaler, sample, ewc, settings, precision)

    for index in range(warmup + repeats):
        batch = bench.train_batch(index, t.batch_size).to(device)
        first = replay.n_seen
        plain = run(lambda batch=batch: _plain_step(plain_model, plain_opt, batch, precision))
        wake = run(lambda batch=batch, index=index: wake_step(
            neocortex, hippocampus, fast_opt, fast_scaler, replay, batch, index, precision,
            reward_alpha=config.experts.reward_alpha, reward_from_correctness=t.reward_from_correctness,
            routing_reg_weight=config.experts.routing_reg_weight, base_optimizer=base_opt,
        ))
        trainable = [p.requires_grad for _, p in consolidated]  # sleep_cycle's toggle, outside the timed step
        for _, p in consolidated:
            p.requires_grad_(True)
        count = len(batch)
        same = run(sleeping(lambda first=first, count=count: _stored_episodes(replay, first, count)))
        full = run(sleeping(lambda: replay.sample(settings.batch_size)))
        for (_, p), flag in zip(consolidated, trainable, strict=True):
            p.requires_grad_(flag)
        if index >= warmup:
            for key, value in (("plain", plain), ("wake", wake), ("sleep", same), ("sleep_replay_batch", full)):
                times[key].append(value)
    for index in range(1 + eval_repeats):  # the first pass warms up
        ms = run(lambda: evaluate_tasks(neocortex, hippocampus, heldouts, t.eval_batch_size, precision))
        if index > 0:
            times["eval"].append(ms)

    median = {key: statistics.median(values) for key, values in times.items()}
    step_tokens = t.batch_size * seq_len
    eval_tokens = sum(h.input_ids.numel() for h in heldouts)
    peak, peak_kind = peak_memory(device)
    return {
        "device": str(device), "torch_threads": torch.get_num_threads(), "repeats": repeats, "warmup": warmup,
        "eval_repeats": eval_repeats, "batch_size": t.batch_size, "seq_len": seq_len, "replay_batch_size": settings.batch_size,
        "plain_step_ms": median["plain"], "wake_step_ms": median["wake"], "sleep_step_ms": median["sleep"],
        "sleep_replay_batch_step_ms": median["sleep_replay_batch"], "eval_pass_ms": median["eval"],
        "eval_ms_per_wake_step": median["eval"] / t.eval_interval,
        "plain_tokens_per_s": step_tokens / median["plain"] * 1e3, "wake_tokens_per_s": step_tokens / median["wake"] * 1e3,
        "sleep_tokens_per_s": step_tokens / median["sleep"] * 1e3,
        "sleep_replay_batch_tokens_per_s": settings.batch_size * seq_len / median["sleep_replay_batch"] * 1e3,
        "eval_tokens_per_s": eval_tokens / median["eval"] * 1e3,
        "wake_ratio": median["wake"] / median["plain"], "sleep_ratio": median["sleep"] / median["plain"],
        "replay_bytes_per_episode": replay.bytes_per_episode(), "replay_capacity": replay.capacity,
        "replay_bytes": replay.nbytes(), "peak_memory_bytes": peak, "peak_memory_kind": peak_kind,
        "samples_ms": times,
    }
