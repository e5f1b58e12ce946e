"""The complementary-learning-systems learner (spec §1-§6): the hippocampus learns awake, sleep
consolidates replayed episodes into the neocortex, absorbed experts are recycled.

``observe`` is the wake step (``biollm_core/wake.py``): the hippocampus trained through the frozen
neocortex, each episode stored with its teacher. ``end_of_step`` reads the sleep pressure (saturation,
novelty, forgetting) and, when the scheduler says so, runs a sleep cycle (``biollm_core/sleep.py``),
refreshes experts (``biollm_core/refresh.py``) and re-measures what is left to consolidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from biollm_core import builders
from biollm_core.config.schema import RunConfig
from biollm_core.device import Precision
from biollm_core.distillation import distillation_loss
from biollm_core.distributed import SINGLE, Distributed
from biollm_core.hippocampus import Hippocampus
from biollm_core.methods import MethodContext
from biollm_core.methods.protocol import MethodSummary, StepInfo, StepOutput
from biollm_core.protocols import Batch, Neocortex
from biollm_core.refresh import refresh_experts
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_sample import ReplaySample
from biollm_core.routing import usage_entropy
from biollm_core.sleep import EwcState, SleepSettings, refresh_teachers, sleep_cycle, sleep_step, trainable
from biollm_core.sleep_pressure import SleepScheduler, forgetting_signal, loss_running_mean, sleep_pressure, surprise_novelty
from biollm_core.wake import WakeResult, wake_step


@dataclass(frozen=True)
class ClsSettings:
    """The flat settings of the loop around wake and sleep (the builder maps the config here)."""

    reward_alpha: float
    reward_from_correctness: bool
    routing_reg_weight: float
    harm_batch_size: int
    harm_every: int
    harm_weight: float
    gate_weight: float
    gate_on_batch: bool
    teacher_after_step: bool
    drift_interval: int
    saturation_threshold: float
    saturation_weight: float
    forgetting_weight: float
    novelty_weight: float
    surprise_novelty: bool  # scheduler.novelty = surprise (else first use)
    teacher_refresh: bool
    refresh_policy: str
    probe_episodes: int
    agreement_threshold: float
    reset_factor: float


@dataclass
class ClsCounters:
    """What a checkpoint restores besides modules and optimizers."""

    sleep_count: int = 0
    sleep_steps: int = 0
    refresh_count_total: int = 0
    base_updates_in_sleep: int = 0
    skipped_sleep_steps: int = 0
    teachers_refreshed: int = 0
    wake_updates: int = 0
    samples_processed: int = 0
    last_sleep_at: int = 0  # training step of the last sleep (0 = none yet)
    loss_mean: float = 0.0  # running mean of the fast loss (scheduler.novelty=surprise)
    last_sleep: dict[str, float | None] = field(
        default_factory=lambda: {"distill_kl": None, "ewc_penalty": None, "base_teacher_kl": None, "refresh_agreement": None}
    )


class ClsLearner:
    def __init__(
        self, neocortex: Neocortex, hippocampus: Hippocampus | None, replay: ReplayBuffer, scheduler: SleepScheduler, *,
        fast_opt: torch.optim.Optimizer | None, slow_opt: torch.optim.Optimizer, wake_base_opt: torch.optim.Optimizer | None,
        sleep_settings: SleepSettings, settings: ClsSettings, precision: Precision, seed: int,
        distributed: Distributed = SINGLE,
    ) -> None:
        self.neocortex, self.hippocampus, self.replay, self.scheduler = neocortex, hippocampus, replay, scheduler
        self.fast_opt, self.slow_opt, self.wake_base_opt = fast_opt, slow_opt, wake_base_opt
        self.fast_scaler, self.slow_scaler = precision.grad_scaler(), precision.grad_scaler()
        self.ewc = EwcState(neocortex.consolidation_parameters())
        self.sleep_settings, self.settings, self.precision = sleep_settings, settings, precision
        self.pseudo_generator = torch.Generator().manual_seed(seed + 3)
        self.counters = ClsCounters()
        self.distributed = distributed
        self._wake: WakeResult | None = None  # the last wake step's result, read by end_of_step

    def combined(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T) ids -> (B, T, V) logits of neocortex + hippocampus."""
        with self.precision.autocast():
            hidden = self.neocortex.encode(x, mask)
            return self.neocortex.decode(hidden if self.hippocampus is None else hidden + self.hippocampus(hidden, mask).delta, mask)

    def observe(self, batch: Batch, step: int) -> StepOutput:
        s = self.settings
        replay_now = self.hippocampus is not None and len(self.replay) and step % s.harm_every == 0
        replayed = s.harm_batch_size if replay_now else 0  # do-no-harm episodes
        self._wake = wake_step(
            self.neocortex, self.hippocampus, self.fast_opt, self.fast_scaler, self.replay, batch, step, self.precision,
            reward_alpha=s.reward_alpha, reward_from_correctness=s.reward_from_correctness,
            routing_reg_weight=s.routing_reg_weight, base_optimizer=self.wake_base_opt,
            harm_batch_size=replayed, harm_weight=s.harm_weight, teacher_after_step=s.teacher_after_step,
            gate_weight=s.gate_weight, gate_on_batch=s.gate_on_batch, distributed=self.distributed,
        )
        self.scheduler.tick()
        self.counters.samples_processed += len(batch) + (self._wake.replayed if self.hippocampus is not None else 0)
        if self.hippocampus is not None:
            self.counters.wake_updates += 1
            if (step + 1) % s.drift_interval == 0:
                self.hippocampus.update_drift()
        return StepOutput(self._wake.task_loss, self._wake.accuracy)

    def end_of_step(self, info: StepInfo) -> Mapping[str, Any]:
        s, c, result = self.settings, self.counters, self._wake
        record: dict[str, Any] = {}
        if self.hippocampus is not None:
            saturation = (self.hippocampus.capacity() > s.saturation_threshold).float().mean()
            record["expert_util_entropy"] = usage_entropy(self.hippocampus.counts)
        else:
            saturation = torch.zeros(())
        novelty = result.novelty
        if s.surprise_novelty:
            novelty = surprise_novelty(result.task_loss, c.loss_mean)
            c.loss_mean = loss_running_mean(result.task_loss, c.loss_mean, info.step)
        # Forgetting counts only evaluations taken since the last sleep: after a sleep pressure restarts at 0.
        fresh = info.evaluated_at is not None and info.evaluated_at > c.last_sleep_at
        forgetting = forgetting_signal(info.forgetting_index) if fresh else 0.0
        pressure = sleep_pressure(saturation, forgetting, novelty, saturation_weight=s.saturation_weight,
                                  forgetting_weight=s.forgetting_weight, novelty_weight=s.novelty_weight)
        record.update({"sleep_pressure": pressure, "pressure_saturation": saturation, "pressure_novelty": novelty,
                       "pressure_forgetting": forgetting, "refresh_count": 0})
        if self.hippocampus is not None:
            # A host sync only when it matters. Data parallel: the pressure's inputs are global already;
            # the decision is still rank 0's, so the ranks cannot part ways (one sleeping, one awake).
            value = self.distributed.agree(float(pressure)) if self.scheduler.needs_pressure() else 0.0
            if (sleep_len := self.scheduler.decide(value)) > 0:
                record["refresh_count"] = self.sleep(sleep_len, info.step)
        record.update({"sleep_count": c.sleep_count, "sleep_steps": c.sleep_steps, "refresh_count_total": c.refresh_count_total,
                       "replay_size": len(self.replay), **c.last_sleep})
        return record

    def sleep(self, num_steps: int, step: int) -> int:
        """One sleep cycle of ``num_steps`` consolidation steps, then the refresh; returns experts refreshed."""
        c, s = self.counters, self.settings
        dp = self.distributed
        if s.teacher_refresh:
            replaced = refresh_teachers(self.replay, self.combined, batch_size=256)
            c.teachers_refreshed += int(dp.all_reduce_sum(torch.tensor(replaced)))
        stats = sleep_cycle(self.neocortex, self.slow_opt, self.slow_scaler, self.replay, self.ewc, num_steps,
                            self.sleep_settings, self.precision, self.combined, self.pseudo_generator, dp)
        self.replay.invalidate_base_targets()  # the neocortex changed: the wake step's cached gate targets are stale
        refreshed = refresh_experts(
            self.neocortex, self.hippocampus, self.fast_opt, self.replay, policy=s.refresh_policy,
            probe_episodes=s.probe_episodes, agreement_threshold=s.agreement_threshold, reset_factor=s.reset_factor,
            distributed=dp,
        )
        self.scheduler.slept()
        c.sleep_count += 1
        c.sleep_steps += stats.steps
        c.base_updates_in_sleep += stats.updates
        c.skipped_sleep_steps += stats.skipped
        c.refresh_count_total += refreshed.refreshed
        c.samples_processed += stats.samples
        c.last_sleep_at = step
        c.last_sleep = {"distill_kl": stats.distill_kl, "ewc_penalty": stats.ewc_penalty,
                        "base_teacher_kl": base_teacher_kl(self.neocortex, self.replay, self.sleep_settings.batch_size,
                                                           self.precision, dp),
                        "refresh_agreement": refreshed.mean_agreement}
        return refreshed.refreshed

    def consolidate_once(self, sample: ReplaySample) -> None:
        """One consolidation step on ``sample`` (this rank's part of a replay sample), what a sleep cycle
        repeats (``biollm bench engine`` and ``bench ddp`` time it)."""
        with trainable(self.ewc.params):
            sleep_step(self.neocortex, self.slow_opt, self.slow_scaler, sample, self.ewc, self.sleep_settings, self.precision,
                       distributed=self.distributed)

    def answering_models(self) -> tuple[Neocortex, Hippocampus | None]:
        return self.neocortex, self.hippocampus

    def summary(self) -> MethodSummary:
        c = self.counters
        trained = list(self.ewc.params) + ([] if self.hippocampus is None else list(self.hippocampus.parameters()))
        figures = {"sleep_count": c.sleep_count, "sleep_steps": c.sleep_steps, "refresh_count_total": c.refresh_count_total,
                   "base_updates_in_sleep": c.base_updates_in_sleep, "skipped_sleep_steps": c.skipped_sleep_steps,
                   "teachers_refreshed": c.teachers_refreshed}
        return MethodSummary(self.replay.capacity, self.replay.nbytes() + self.ewc.nbytes(), sum(p.numel() for p in trained),
                             c.wake_updates + c.base_updates_in_sleep, c.samples_processed, figures)

    def _stateful(self) -> dict[str, Any]:
        return {"neocortex": self.neocortex, "hippocampus": self.hippocampus, "fast_opt": self.fast_opt, "slow_opt": self.slow_opt,
                "wake_base_opt": self.wake_base_opt, "fast_scaler": self.fast_scaler, "slow_scaler": self.slow_scaler,
                "replay": self.replay, "scheduler": self.scheduler, "ewc": self.ewc}

    def state_dict(self) -> dict[str, Any]:
        state = {name: obj.state_dict() for name, obj in self._stateful().items() if obj is not None}
        self.counters.loss_mean = float(self.counters.loss_mean)  # one sync per checkpoint
        return {**state, "pseudo_generator": self.pseudo_generator.get_state(), "counters": asdict(self.counters)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, obj in self._stateful().items():
            if obj is not None:
                obj.load_state_dict(state[name])
        self.pseudo_generator.set_state(state["pseudo_generator"])
        self.counters = ClsCounters(**state["counters"])


@torch.no_grad()
def base_teacher_kl(neocortex: Neocortex, replay: ReplayBuffer, batch_size: int, precision: Precision,
                    distributed: Distributed = SINGLE) -> float:
    """KL(teacher || base) on a fresh replay batch after sleep: what is left to consolidate (data
    parallel: over the whole batch, each rank scoring the episodes it holds)."""
    sample = replay.sample(batch_size)
    kl = torch.zeros(())
    if len(sample):
        with precision.autocast():
            base = neocortex.decode(neocortex.encode(sample.input_ids, sample.attention_mask), sample.attention_mask)
        _, kl = distillation_loss(base, sample.teacher, sample.labels != -100, sample.teacher_indices)
    return float(distributed.all_reduce_sum(distributed.share(kl, len(sample), batch_size).cpu()))


def build(config: RunConfig, context: MethodContext) -> ClsLearner:
    e, c, s = config.experts, config.consolidation, config.scheduler
    neocortex = builders.build_device_neocortex(config, context.benchmark.input_vocab_size, context.device, context.precision)
    hippocampus = None
    fast_opt = None
    if not config.train.ablation_disable_hippocampus:
        hippocampus = builders.build_hippocampus(config, neocortex.hidden_size).to(context.device)
        fast_opt = builders.adamw(hippocampus.parameters(), lr=e.fast_lr, weight_decay=e.weight_decay)
    consolidated = [p for _, p in neocortex.consolidation_parameters()]
    slow_opt = builders.adamw(consolidated, lr=c.slow_lr, weight_decay=c.weight_decay)
    wake_base_opt = None
    if c.wake_base_lr_scale > 0:
        for p in consolidated:
            p.requires_grad_(True)
        wake_base_opt = builders.adamw(consolidated, lr=c.slow_lr * c.wake_base_lr_scale, weight_decay=c.weight_decay)
    # The gate's neocortex-only targets of replayed episodes are cached between sleeps when the neocortex is
    # frozen awake (data parallel: a per-slot record every rank keeps, filled from every rank's decodes).
    cache = (hippocampus is not None and e.gate and config.wake.gate_weight > 0 and config.wake.harm_batch_size > 0
             and wake_base_opt is None)
    replay = builders.build_replay(config, context.seq_len, context.device, with_attention_mask=context.with_attention_mask,
                                   distributed=context.distributed, base_targets=cache)
    settings = ClsSettings(
        reward_alpha=e.reward_alpha, reward_from_correctness=config.train.reward_from_correctness,
        routing_reg_weight=e.routing_reg_weight, harm_batch_size=config.wake.harm_batch_size, harm_every=config.wake.harm_every,
        harm_weight=config.wake.harm_weight,
        gate_weight=config.wake.gate_weight, gate_on_batch=config.wake.gate_on_batch,
        teacher_after_step=config.wake.teacher_after_step, drift_interval=e.drift_interval,
        saturation_threshold=e.saturation_threshold,
        saturation_weight=s.saturation_weight, forgetting_weight=s.forgetting_weight, novelty_weight=s.novelty_weight,
        surprise_novelty=s.novelty == "surprise", teacher_refresh=c.teacher_refresh, refresh_policy=c.refresh.policy,
        probe_episodes=c.refresh.probe_episodes,
        agreement_threshold=c.refresh.agreement_threshold, reset_factor=c.refresh.reset_factor,
    )
    return ClsLearner(neocortex, hippocampus, replay, builders.build_scheduler(config), fast_opt=fast_opt, slow_opt=slow_opt,
                      wake_base_opt=wake_base_opt, sleep_settings=builders.build_sleep_settings(config), settings=settings,
                      precision=context.precision, seed=config.seed, distributed=context.distributed)
