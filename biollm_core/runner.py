"""One CLS run from a validated config: wake steps, evaluations, sleeps, refreshes, artifacts.

The loop reads top to bottom; the math lives in ``wake``, ``sleep``, ``refresh``, ``evaluate`` and
``continual_metrics``. Metrics leave only through the injected sinks (a JSONL sink is always added).
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
from biollm_core.checkpoint import load_latest_checkpoint, save_checkpoint
from biollm_core.config.schema import RunConfig
from biollm_core.continual_metrics import accuracy_matrix_metrics
from biollm_core.device import Precision, configure_precision, maybe_compile, pick_device
from biollm_core.distillation import distillation_loss
from biollm_core.evaluate import evaluate_tasks
from biollm_core.output_dir import check_out_dir
from biollm_core.protocols import MetricsSink, Neocortex
from biollm_core.redaction import redact
from biollm_core.refresh import refresh_experts
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.routing import usage_entropy
from biollm_core.sleep import EwcState, sleep_cycle
from biollm_core.sleep_pressure import forgetting_signal, loss_running_mean, sleep_pressure, surprise_novelty
from biollm_core.step_log import StepLog
from biollm_core.wake import wake_step

log = logging.getLogger("biollm")


@dataclass
class Progress:
    step: int
    total: int
    task_id: int
    sleep_count: int


@dataclass
class RunState:
    """Everything about the loop that a checkpoint must restore besides modules and optimisers."""

    step: int = 0  # wake steps completed
    sleep_count: int = 0
    sleep_steps: int = 0
    refresh_count_total: int = 0
    base_updates_in_sleep: int = 0
    skipped_sleep_steps: int = 0
    elapsed_s: float = 0.0
    tokens: int = 0
    segment_tasks: list[int] = field(default_factory=list)
    matrix: list[list[float]] = field(default_factory=list)  # combined model
    base_matrix: list[list[float]] = field(default_factory=list)
    old_task_loss: float | None = None
    base_old_task_loss: float | None = None
    base_best_loss: float = float("inf")
    forgetting_index: float = 0.0  # at the last evaluation (the scheduler's copy resets after a sleep)
    base_forgetting_index: float = 0.0
    loss_mean: float | torch.Tensor = 0.0  # running mean of the fast loss (scheduler.novelty=surprise)
    last_sleep: dict[str, float | None] = field(
        default_factory=lambda: {"distill_kl": None, "ewc_penalty": None, "base_teacher_kl": None, "refresh_agreement": None}
    )


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
) -> dict[str, Any]:
    """Run (or resume) one experiment into ``out_dir``; returns the summary written to summary.json."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)  # created below, once config, data and model are built
    seed_everything(config.seed)
    device = pick_device(config.device)
    t = config.train
    precision = configure_precision(
        device, amp_enabled=t.amp_enabled, amp_dtype=t.amp_dtype, allow_tf32=t.allow_tf32,
        matmul_precision=t.matmul_precision, deterministic=config.repro.deterministic, cudnn_benchmark=config.repro.cudnn_benchmark,
    )
    bench = builders.build_benchmark(config)
    heldouts = [bench.heldout(task).to(device) for task in range(bench.num_tasks)]
    seq_len = heldouts[0].input_ids.shape[1]
    neocortex = builders.build_neocortex(config, bench.input_vocab_size).to(device)
    neocortex.requires_grad_(False)
    if t.compile:  # the module keeps its parameters and state_dict; only the two halves are compiled
        neocortex.encode = maybe_compile(neocortex.encode, True, device, precision.notes)
        neocortex.decode = maybe_compile(neocortex.decode, True, device, precision.notes)
    use_hippocampus = not t.ablation_disable_hippocampus
    hippocampus = builders.build_hippocampus(config, neocortex.hidden_size).to(device) if use_hippocampus else None
    e, c = config.experts, config.consolidation
    fast_opt = builders.adamw(hippocampus.parameters(), lr=e.fast_lr, weight_decay=e.weight_decay) if hippocampus else None
    consolidated = neocortex.consolidation_parameters()
    slow_opt = builders.adamw([p for _, p in consolidated], lr=c.slow_lr, weight_decay=c.weight_decay)
    wake_base_opt = None
    if config.consolidation.wake_base_lr_scale > 0:
        for _, p in consolidated:
            p.requires_grad_(True)
        wake_base_opt = builders.adamw([p for _, p in consolidated], lr=c.slow_lr * c.wake_base_lr_scale)
    fast_scaler, slow_scaler = precision.grad_scaler(), precision.grad_scaler()
    replay = builders.build_replay(config, seq_len, device, with_attention_mask=heldouts[0].attention_mask is not None)
    scheduler = builders.build_scheduler(config)
    sleep_settings = builders.build_sleep_settings(config)
    ewc = EwcState(consolidated)
    pseudo_generator = torch.Generator().manual_seed(config.seed + 3)
    state = RunState()
    total = bench.total_steps
    segment_ends = set(bench.segment_ends())

    def combined(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        with precision.autocast():
            hidden = neocortex.encode(x, mask)
            return neocortex.decode(hidden if hippocampus is None else hidden + hippocampus(hidden, mask).delta, mask)

    modules = {"neocortex": neocortex, "hippocampus": hippocampus, "fast_opt": fast_opt, "slow_opt": slow_opt,
               "wake_base_opt": wake_base_opt, "fast_scaler": fast_scaler, "slow_scaler": slow_scaler,
               "replay": replay, "scheduler": scheduler, "ewc": ewc}

    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = out_dir / "checkpoints"
    metrics_path = out_dir / "metrics.jsonl"
    if resume and (latest := load_latest_checkpoint(checkpoints, device)) is not None:
        found, saved = latest
        for name, obj in modules.items():
            if obj is not None:
                obj.load_state_dict(saved[name])
        pseudo_generator.set_state(saved["pseudo_generator"])
        state = RunState(**saved["run_state"])
        truncate_metrics(metrics_path, state.step)
        log.info("resumed from %s at step %d", found, state.step)
    elif not resume:
        metrics_path.unlink(missing_ok=True)
    write_json_atomic(out_dir / "validated_config.json", redact(config.model_dump(mode="json", by_alias=True)))
    write_json_atomic(out_dir / "run_metadata.json", redact(run_metadata(device, precision.notes)))

    all_sinks: list[MetricsSink] = [JsonlSink(metrics_path), *sinks]
    step_log = StepLog()
    started = time.perf_counter() - state.elapsed_s

    def emit() -> None:
        for step, record in step_log.flush():
            for sink in all_sinks:
                sink.log_metrics(step, record)

    def checkpoint(final: bool) -> None:
        emit()
        state.elapsed_s = time.perf_counter() - started
        payload = {name: obj.state_dict() for name, obj in modules.items() if obj is not None}
        payload["pseudo_generator"] = pseudo_generator.get_state()
        state.loss_mean = float(state.loss_mean)  # one sync per checkpoint
        payload["run_state"] = asdict(state)
        path = save_checkpoint(checkpoints, state.step, payload, config.logging.checkpoint_keep_last)
        for sink in all_sinks:
            sink.log_checkpoint(state.step, path, final)

    try:
        while state.step < total:
            index = state.step  # 0-based wake step
            batch = bench.train_batch(index, t.batch_size).to(device)
            result = wake_step(
                neocortex, hippocampus, fast_opt, fast_scaler, replay, batch, index, precision,
                reward_alpha=config.experts.reward_alpha, reward_from_correctness=t.reward_from_correctness,
                routing_reg_weight=config.experts.routing_reg_weight, base_optimizer=wake_base_opt,
            )
            state.step += 1
            state.tokens += batch.input_ids.numel()
            scheduler.tick()
            if hippocampus is not None and state.step % config.experts.drift_interval == 0:
                hippocampus.update_drift()
            record: dict[str, Any] = {"task_id": batch.task_id, "task_loss": result.task_loss, "train_acc": result.accuracy}

            if index == 0 or index - 1 in segment_ends:
                state.segment_tasks.append(batch.task_id)
            seen = sorted(set(state.segment_tasks))
            is_segment_end = index in segment_ends
            if is_segment_end or state.step % t.eval_interval == 0:
                tasks = list(range(bench.num_tasks)) if is_segment_end else seen
                scores = evaluate_tasks(neocortex, hippocampus, [heldouts[j] for j in tasks], t.eval_batch_size, precision)
                pos = {task: i for i, task in enumerate(tasks)}
                state.old_task_loss = float(np.mean([scores.combined_loss[pos[j]] for j in seen]))
                state.base_old_task_loss = float(np.mean([scores.base_loss[pos[j]] for j in seen]))
                state.forgetting_index = scheduler.observe_seen_loss(state.old_task_loss)
                state.base_best_loss = min(state.base_best_loss, state.base_old_task_loss)
                state.base_forgetting_index = max(0.0, state.base_old_task_loss - state.base_best_loss)
                record["seen_acc"] = float(np.mean([scores.combined_accuracy[pos[j]] for j in seen]))
                record["base_seen_acc"] = float(np.mean([scores.base_accuracy[pos[j]] for j in seen]))
                if is_segment_end:
                    state.matrix.append(scores.combined_accuracy)
                    state.base_matrix.append(scores.base_accuracy)
                    record["segment_end"] = len(state.matrix) - 1

            if hippocampus is not None:
                saturation = (hippocampus.capacity() > config.experts.saturation_threshold).float().mean()
                record["expert_util_entropy"] = usage_entropy(hippocampus.counts)
            else:
                saturation = torch.zeros(())
            novelty = result.novelty
            if config.scheduler.novelty == "surprise":
                novelty = surprise_novelty(result.task_loss, state.loss_mean)
                state.loss_mean = loss_running_mean(result.task_loss, state.loss_mean, state.step)
            forgetting = forgetting_signal(scheduler.forgetting_index)
            s = config.scheduler
            pressure = sleep_pressure(saturation, forgetting, novelty, saturation_weight=s.saturation_weight,
                                      forgetting_weight=s.forgetting_weight, novelty_weight=s.novelty_weight)
            record.update({
                "old_task_loss": state.old_task_loss, "forgetting_index": state.forgetting_index,
                "base_old_task_loss": state.base_old_task_loss, "base_forgetting_index": state.base_forgetting_index,
                "sleep_pressure": pressure, "pressure_saturation": saturation, "pressure_novelty": novelty,
                "pressure_forgetting": forgetting,
            })

            slept_now = False
            if config.mode == "sleep" and hippocampus is not None:
                value = float(pressure) if scheduler.needs_pressure() else 0.0  # a host sync only when it matters
                sleep_len = scheduler.decide(value)
                if sleep_len > 0:
                    stats = sleep_cycle(neocortex, slow_opt, slow_scaler, replay, ewc, sleep_len, sleep_settings,
                                        precision, combined, pseudo_generator)
                    refreshed = refresh_experts(
                        neocortex, hippocampus, fast_opt, replay, policy=config.consolidation.refresh.policy,
                        probe_episodes=config.consolidation.refresh.probe_episodes,
                        agreement_threshold=config.consolidation.refresh.agreement_threshold,
                        reset_factor=config.consolidation.refresh.reset_factor,
                    )
                    scheduler.slept()
                    state.sleep_count += 1
                    state.sleep_steps += stats.steps
                    state.base_updates_in_sleep += stats.updates
                    state.skipped_sleep_steps += stats.skipped
                    state.refresh_count_total += refreshed.refreshed
                    state.last_sleep = {"distill_kl": stats.distill_kl, "ewc_penalty": stats.ewc_penalty,
                                        "base_teacher_kl": _base_teacher_kl(neocortex, replay, sleep_settings.batch_size, precision),
                                        "refresh_agreement": refreshed.mean_agreement}
                    record["refresh_count"] = refreshed.refreshed
                    slept_now = True
            record.setdefault("refresh_count", 0)
            record.update({"sleep_count": state.sleep_count, "sleep_steps": state.sleep_steps,
                           "refresh_count_total": state.refresh_count_total, "replay_size": len(replay), **state.last_sleep})
            if device.type == "cuda":
                record["cuda_memory_allocated"] = torch.cuda.memory_allocated(device)
                record["cuda_memory_reserved"] = torch.cuda.memory_reserved(device)
            step_log.add(state.step, record, batch.input_ids.numel())
            if "seen_acc" in record or slept_now:
                emit()
            if state.step % config.logging.checkpoint_interval == 0 and state.step < total:
                checkpoint(final=False)
            if progress is not None:
                progress(Progress(state.step, total, batch.task_id, state.sleep_count))
        checkpoint(final=True)
        summary = _summary(config, state, time.perf_counter() - started)
        write_json_atomic(out_dir / "summary.json", summary)
        for sink in all_sinks:
            sink.log_summary(summary)
        return summary
    finally:
        emit()
        for sink in all_sinks:
            sink.close()


@torch.no_grad()
def _base_teacher_kl(neocortex: Neocortex, replay: ReplayBuffer, batch_size: int, precision: Precision) -> float:
    """KL(teacher || base) on a fresh replay batch after sleep: what is left to consolidate."""
    sample = replay.sample(batch_size)
    with precision.autocast():
        base = neocortex.decode(neocortex.encode(sample.input_ids, sample.attention_mask), sample.attention_mask)
    _, kl = distillation_loss(base, sample.teacher, sample.labels != -100, sample.teacher_indices)
    return float(kl)


def _summary(config: RunConfig, state: RunState, wall_time_s: float) -> dict[str, Any]:
    combined = accuracy_matrix_metrics(state.matrix, state.segment_tasks)
    base = accuracy_matrix_metrics(state.base_matrix, state.segment_tasks)
    return {
        "run_name": config.run_name, "mode": config.mode, "seed": config.seed, "steps": state.step,
        "final_seen_acc_avg": combined["seen_acc_avg"], "final_forgetting": combined["forgetting"],
        "final_bwt": combined["bwt"], "seen_acc_auc": combined["seen_acc_auc"],
        "final_base_seen_acc_avg": base["seen_acc_avg"], "final_base_forgetting": base["forgetting"],
        "final_base_bwt": base["bwt"], "base_seen_acc_auc": base["seen_acc_auc"],
        "final_forgetting_index": state.forgetting_index,
        "final_old_task_loss": state.old_task_loss, "final_base_forgetting_index": state.base_forgetting_index,
        "sleep_count": state.sleep_count, "sleep_steps": state.sleep_steps, "refresh_count_total": state.refresh_count_total,
        "base_updates_in_sleep": state.base_updates_in_sleep, "skipped_sleep_steps": state.skipped_sleep_steps,
        "wall_time_s": wall_time_s, "tokens_per_s": state.tokens / max(wall_time_s, 1e-9),
        "accuracy_matrix": state.matrix, "base_accuracy_matrix": state.base_matrix, "segment_tasks": state.segment_tasks,
    }
