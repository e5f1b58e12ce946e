"""`biollm bench engine`: what one training step of a continual method costs next to plain fine-tuning.

The method is built by ``biollm_core.methods.build_method``, the runner's own builder, from the resolved
run config; the baseline is a copy of its neocortex with every parameter trained by one fine-tuning
step (full forward, cross-entropy, backward, AdamW from ``builders.adamw``, fused on CPU and CUDA, as
every method's optimizer is), its two halves compiled as the method's are under ``train.compile``.
Both are timed in one process, interleaved repeat by repeat on the same batches, so that load from
other processes hits every phase alike and the ratios stay meaningful on a busy machine:

- plain: the baseline's step;
- step: the method's ``observe`` on the stream's batch (for cls and nosleep, the wake step: hippocampus
  trained through the frozen neocortex, plus for cls the teacher decode and replay add);
- sleep (methods that consolidate, i.e. have ``consolidate_once``): one consolidation step
  (distillation + online Fisher + EWC gradient + AdamW) on the episodes a step stored, the same
  tokens as the plain step; ``sleep_replay_batch`` the same on a replay batch of ``replay.batch_size``.
  They run after all the method's steps, interleaved with plain steps of their own (``sleep_ratio`` is
  against those), so the wake steps follow one another as in a run between two sleeps and the
  hippocampus routes as it does there (``wake_experts_used``: the median number of experts a timed
  step's batch was routed to);
- eval: ``biollm_core.evaluate.evaluate_tasks`` over every task's held-out set (base and answering model).

Warm-up repeats are run and discarded; each figure is the median over ``repeats``; ratios are ratios
of the medians. Peak memory is CUDA's ``max_memory_allocated`` on a GPU and the process's peak
resident set size elsewhere (it then includes Python, torch and everything loaded).
"""

from __future__ import annotations

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
from biollm_core.device import Precision, pick_device
from biollm_core.evaluate import evaluate_tasks
from biollm_core.methods import MethodContext, build_method
from biollm_core.protocols import Batch, Neocortex
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_sample import ReplaySample


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
    """The slots the episodes offered as numbers ``first .. first+count-1`` went to while the buffer filled
    (a later episode may have replaced some since: as many stored episodes either way)."""
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
    """Time plain fine-tuning, the method's step (and sleep step) and evaluation on the same batches."""
    if repeats < 1 or warmup < 0 or eval_repeats < 1:
        raise ValueError("repeats and eval_repeats must be >= 1 and warmup >= 0")
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    precision = builders.build_precision(config, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t = config.train
    bench = builders.build_benchmark(config)
    heldouts = [bench.heldout(task).to(device) for task in range(bench.num_tasks)]
    config = builders.fit_to_benchmark(config, bench)
    seq_len = heldouts[0].labels.shape[1]
    method = build_method(config, MethodContext(bench, device, precision, seq_len, heldouts[0].attention_mask is not None))
    neocortex, hippocampus = method.answering_models()
    # Compiled like the method's neocortex under train.compile: the comparison is compiled against compiled.
    plain_model = builders.copy_neocortex(neocortex, compile_on=device if config.train.compile else None).requires_grad_(True)
    plain_opt = builders.adamw(plain_model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    consolidate = getattr(method, "consolidate_once", None)  # methods with a sleep phase (cls)
    replay: ReplayBuffer | None = getattr(method, "replay", None)
    replay_batch = config.replay.batch_size
    run = _timer(device)
    times: dict[str, list[float]] = {"plain": [], "step": [], "eval": []}
    experts_used: list[int] = []
    # Phase 1: the method's steps back to back, as a run's wake steps between two sleeps. A sleep step
    # after every wake step kept the toy stream's hippocampus routing to 3 of train=cpu's 8 experts (the
    # setting of tests/biollm_platform/bench/test_engine.py), a state no run is in: there all 8.
    def keep(index: int, measured: dict[str, float]) -> None:
        if index >= warmup:
            for key, value in measured.items():
                times[key].append(value)

    batches = [bench.train_batch(index, t.batch_size).to(device) for index in range(warmup + repeats)]
    firsts = []
    for index, batch in enumerate(batches):
        firsts.append(replay.n_seen if replay is not None else 0)
        counts = None if hippocampus is None else hippocampus.counts.clone()
        measured = {
            "plain": run(lambda batch=batch: _plain_step(plain_model, plain_opt, batch, precision)),
            "step": run(lambda batch=batch, index=index: method.observe(batch, index)),
        }
        keep(index, measured)
        if index >= warmup and counts is not None:
            experts_used.append(int((hippocampus.counts > counts).sum()))
    # Phase 2 (methods that consolidate): a sleep step on the episodes each step stored, and on a replay
    # batch, interleaved with plain steps again (their own figure: the sleep ratio's, under the same load).
    if consolidate is not None:
        times.update({"sleep_plain": [], "sleep": [], "sleep_replay_batch": []})
        for index, batch in enumerate(batches):
            same = _stored_episodes(replay, firsts[index], len(batch))  # drawn outside the timed region
            full = replay.sample(replay_batch)
            keep(index, {
                "sleep_plain": run(lambda batch=batch: _plain_step(plain_model, plain_opt, batch, precision)),
                "sleep": run(lambda same=same: consolidate(same)),
                "sleep_replay_batch": run(lambda full=full: consolidate(full)),
            })
    for index in range(1 + eval_repeats):  # the first pass warms up
        ms = run(lambda: evaluate_tasks(neocortex, hippocampus, heldouts, t.eval_batch_size, precision))
        if index > 0:
            times["eval"].append(ms)

    median = {key: statistics.median(values) for key, values in times.items()}
    step_tokens = t.batch_size * heldouts[0].num_tokens() // len(heldouts[0])  # T per sequence, 1 per feature vector
    eval_tokens = sum(h.num_tokens() for h in heldouts)
    peak, peak_kind = peak_memory(device)
    cost = method.summary()
    result = {
        "method": config.method.name, "device": str(device), "torch_threads": torch.get_num_threads(), "repeats": repeats,
        "warmup": warmup, "eval_repeats": eval_repeats, "batch_size": t.batch_size, "seq_len": seq_len,
        "plain_step_ms": median["plain"], "step_ms": median["step"], "eval_pass_ms": median["eval"],
        "eval_ms_per_step": median["eval"] / t.eval_interval,
        "plain_tokens_per_s": step_tokens / median["plain"] * 1e3, "step_tokens_per_s": step_tokens / median["step"] * 1e3,
        "eval_tokens_per_s": eval_tokens / median["eval"] * 1e3, "step_ratio": median["step"] / median["plain"],
        "memory_episodes": cost.memory_episodes, "memory_bytes": cost.memory_bytes, "trainable_params": cost.trainable_params,
        "peak_memory_bytes": peak, "peak_memory_kind": peak_kind, "samples_ms": times,
    }
    if replay is not None:
        result.update({"replay_bytes_per_episode": replay.bytes_per_episode(), "replay_capacity": replay.capacity,
                       "replay_bytes": replay.nbytes()})
    if consolidate is not None:
        result.update({
            "replay_batch_size": replay_batch, "sleep_step_ms": median["sleep"], "sleep_replay_batch_step_ms": median["sleep_replay_batch"],
            "sleep_tokens_per_s": step_tokens / median["sleep"] * 1e3,
            "sleep_replay_batch_tokens_per_s": replay_batch * seq_len / median["sleep_replay_batch"] * 1e3,
            "sleep_plain_step_ms": median["sleep_plain"], "sleep_ratio": median["sleep"] / median["sleep_plain"],
        })
    if hippocampus is not None:  # the CLS learner's figures under their usual names
        result.update({"wake_step_ms": median["step"], "wake_tokens_per_s": result["step_tokens_per_s"],
                       "wake_ratio": result["step_ratio"], "num_experts": hippocampus.num_experts,
                       "wake_experts_used": statistics.median(experts_used)})
    return result
