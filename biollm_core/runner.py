"""One run of any continual method from a validated config: batch -> method step -> the method's
end-of-step work -> shared evaluation -> record -> checkpoint.

The loop knows no method by name: it calls the ``ContinualMethod`` protocol (``biollm_core/methods``)
and the evaluation protocol (``evaluation_protocol.py``). Metrics leave only through the injected sinks
(a JSONL sink is always added).

Data parallel (``distributed`` with W ranks, ``biollm_core/distributed.py``): every rank runs this loop
on its shard of each global batch, in step with the others (the same steps, evaluations, sleeps and
sink calls). Rank 0 writes the run's artifacts; rank r > 0 writes only its replay shard's checkpoints
(``rank_state.py``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biollm_core import builders
from biollm_core.artifacts import JsonlSink, run_metadata, truncate_metrics, write_json_atomic
from biollm_core.config.schema import RunConfig
from biollm_core.device import pick_device
from biollm_core.distributed import SINGLE, Distributed
from biollm_core.evaluate import evaluate_tasks
from biollm_core.evaluation_protocol import EvaluationState
from biollm_core.methods import MethodContext, build_method
from biollm_core.methods.protocol import ContinualMethod, StepInfo
from biollm_core.output_dir import check_out_dir
from biollm_core.protocols import MetricsSink
from biollm_core.rank_state import RANK_LOCAL, load_run_checkpoint, save_run_checkpoint
from biollm_core.redaction import redact
from biollm_core.step_log import StepLog

log = logging.getLogger("biollm")


@dataclass
class Progress:
    step: int
    total: int
    task_id: int
    sleep_count: int  # sleeps so far (0 for methods that never sleep)


@dataclass
class RunState:
    """Everything about the loop that a checkpoint restores besides the method's own state."""

    step: int = 0  # training steps completed
    elapsed_s: float = 0.0
    tokens: int = 0
    evaluation: EvaluationState = field(default_factory=EvaluationState)
    samples_offset: int = 0  # data parallel: this rank's samples beyond what the (rank 0) method state counts


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_experiment(
    config: RunConfig,
    out_dir: Path,
    *,
    sinks: Sequence[MetricsSink] = (),
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
    distributed: Distributed = SINGLE,
) -> dict[str, Any]:
    """Run (or resume) one experiment into ``out_dir``; returns the summary written to summary.json.

    Data parallel: call it on every rank of an initialised process group with the same arguments
    (``out_dir`` the same directory); the global batch ``train.batch_size`` is split across ranks."""
    out_dir, dp = Path(out_dir), distributed
    dp.check_divisible("train.batch_size", config.train.batch_size)
    if dp.is_main:
        check_out_dir(out_dir, resume)  # created below, once config, data and model are built
    seed_everything(config.seed)
    device = pick_device(config.device)
    precision = builders.build_precision(config, device)
    bench = builders.build_benchmark(config)
    config = builders.fit_to_benchmark(config, bench)  # the MLP's sizes from a feature benchmark
    heldouts = [bench.heldout(task).to(device) for task in range(bench.num_tasks)]
    context = MethodContext(bench, device, precision, heldouts[0].labels.shape[1], heldouts[0].attention_mask is not None, dp)
    method = build_method(config, context)
    t, checkpoints = config.train, out_dir / "checkpoints"
    if dp.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    state = start_state(out_dir, resume, method, device, dp)
    if dp.is_main:
        write_json_atomic(out_dir / "validated_config.json", redact(config.model_dump(mode="json", by_alias=True)))
        write_json_atomic(out_dir / "run_metadata.json",
                          redact({**run_metadata(device, precision.notes), "world_size": dp.world_size}))
    all_sinks: list[MetricsSink] = [JsonlSink(out_dir / "metrics.jsonl"), *sinks] if dp.is_main else list(sinks)
    step_log, started = StepLog(), time.perf_counter() - state.elapsed_s
    evaluation, segment_ends = state.evaluation, set(bench.segment_ends())

    def evaluate(tasks: list[int]) -> Any:
        return evaluate_tasks(*method.answering_models(), [heldouts[j] for j in tasks], t.eval_batch_size, precision, dp)

    def emit() -> None:
        for step, record in step_log.flush():
            for sink in all_sinks:
                sink.log_metrics(step, record)

    def checkpoint(final: bool) -> None:
        emit()
        state.elapsed_s = time.perf_counter() - started
        saved = {"method": method.state_dict(), "run_state": asdict(state)}
        if dp.parallel:  # what this rank alone counted (the method's counters are rank 0's after a resume)
            saved["rank"] = {RANK_LOCAL: True, "samples_processed": rank_samples(method, state)}
        path = save_run_checkpoint(checkpoints, state.step, saved, config.logging.checkpoint_keep_last, dp)
        for sink in all_sinks:
            sink.log_checkpoint(state.step, path, final)

    if state.step == 0:  # A_init: the row before the first step (forward transfer)
        evaluation.record_initial(evaluate(list(range(bench.num_tasks))))
    try:
        while state.step < bench.total_steps:
            index = state.step
            batch = bench.train_batch(index, t.batch_size)  # the global batch: this rank trains on its rows
            tokens = batch.num_tokens()  # of the global batch
            batch = batch.rows(dp.rows(len(batch))).to(device)
            evaluation.begin_step(batch.task_id, first_of_segment=index == 0 or index - 1 in segment_ends)
            output = method.observe(batch, index)
            state.step, state.tokens = state.step + 1, state.tokens + tokens
            segment_end = index in segment_ends
            info = StepInfo(state.step, batch.task_id, segment_end, evaluation.forgetting_index, evaluation.evaluated_at)
            record = {"task_id": batch.task_id, "task_loss": output.task_loss, "train_acc": output.accuracy, **method.end_of_step(info)}
            if segment_end or state.step % t.eval_interval == 0:
                tasks = list(range(bench.num_tasks)) if segment_end else evaluation.seen_tasks()
                record.update(evaluation.record(state.step, tasks, evaluate(tasks), segment_end=segment_end,
                                                anytime=state.step % t.eval_interval == 0))
            record.update(evaluation.losses())
            step_log.add(state.step, _with_device_memory(record, device), tokens)
            if "seen_acc" in record:
                emit()
            if state.step % config.logging.checkpoint_interval == 0 and state.step < bench.total_steps:
                checkpoint(final=False)
            if progress is not None:
                progress(Progress(state.step, bench.total_steps, batch.task_id, int(record.get("sleep_count", 0))))
        checkpoint(final=True)
        summary = run_summary(config, state, method, time.perf_counter() - started, dp)
        if dp.is_main:
            write_json_atomic(out_dir / "summary.json", summary)
        else:
            log.info("rank %d processed %d samples", dp.rank, rank_samples(method, state))
        for sink in all_sinks:
            sink.log_summary(summary)
        return summary
    finally:
        emit()
        for sink in all_sinks:
            sink.close()


def start_state(out_dir: Path, resume: bool, method: ContinualMethod, device: torch.device,
                dp: Distributed = SINGLE) -> RunState:
    """A fresh state, or with ``resume`` the latest checkpoint's (loaded into ``method``, metrics.jsonl cut
    back to its step). Data parallel: rank 0's ``resume`` and checkpoint decide for every rank."""
    metrics_path = out_dir / "metrics.jsonl"
    resume = bool(dp.agree(float(resume)))
    if resume and (latest := load_run_checkpoint(out_dir / "checkpoints", device, dp)) is not None:
        if dp.is_main:  # a garbled record stops it before any log line
            truncate_metrics(metrics_path, latest[1]["run_state"]["step"])
        return restore(*latest, method)
    if not resume and dp.is_main:
        metrics_path.unlink(missing_ok=True)
    return RunState()


def restore(found: Path, saved: dict[str, Any], method: ContinualMethod) -> RunState:
    """Load a checkpoint's state into ``method``; returns the loop's state at that step."""
    method.load_state_dict(saved["method"])
    run_state = dict(saved["run_state"])
    state = RunState(**{**run_state, "evaluation": EvaluationState(**run_state["evaluation"])})
    if "rank" in saved:  # data parallel: this rank's own count, against the restored (rank 0) counters
        state.samples_offset = int(saved["rank"]["samples_processed"]) - method.summary().samples_processed
    log.info("resumed from %s at step %d", found, state.step)
    return state


def _with_device_memory(record: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        record["cuda_memory_allocated"] = torch.cuda.memory_allocated(device)
        record["cuda_memory_reserved"] = torch.cuda.memory_reserved(device)
    return record


def rank_samples(method: ContinualMethod, state: RunState) -> int:
    """Samples through this rank's training forward passes so far."""
    return method.summary().samples_processed + state.samples_offset


def run_summary(config: RunConfig, state: RunState, method: ContinualMethod, wall_time_s: float,
                dp: Distributed = SINGLE) -> dict[str, Any]:
    """summary.json: the evaluation protocol's figures, the method's cost accounting and its own figures.

    Data parallel: ``samples_processed`` counts every rank's (``rank_samples_processed``, one per rank);
    the rest is the same on every rank."""
    cost = method.summary().as_dict()
    ranks = dp.all_gather(torch.tensor([rank_samples(method, state)], dtype=torch.float64)).flatten()
    cost["samples_processed"] = int(ranks.sum())
    return {
        "run_name": config.run_name, "method": config.method.name, "seed": config.seed, "steps": state.step,
        **state.evaluation.summary(), **cost, "world_size": dp.world_size,
        "rank_samples_processed": [int(n) for n in ranks.tolist()], "communication_s": dp.comm_s,
        "wall_time_s": wall_time_s, "tokens_per_s": state.tokens / max(wall_time_s, 1e-9),
    }

