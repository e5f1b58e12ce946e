"""Sleep pressure and the sleep scheduler (spec §4).

The math is pure functions; ``SleepScheduler`` holds the little state the decision needs (steps since the
last sleep) and serialises it for checkpoints. The forgetting index itself is the evaluation protocol's
(``biollm_core/evaluation_protocol.py``): the CLS learner reads it from the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def forgetting_signal(forgetting_index: float) -> float:
    """Squash the loss-based forgetting index (>= 0, in nats) into [0, 1): ``1 - exp(-index)``."""
    return 1.0 - math.exp(-max(forgetting_index, 0.0))


def surprise_novelty(loss: torch.Tensor | float, running_mean: torch.Tensor | float) -> torch.Tensor:
    """Surprise: ``clip(loss / running_mean - 1, 0, 1)`` (0 before any mean exists).

    A loss at its running mean is no surprise; twice the mean or more is full novelty. Works on device
    tensors, so reading it needs no host sync.
    """
    loss = torch.as_tensor(loss, dtype=torch.float32)
    mean = torch.as_tensor(running_mean, dtype=torch.float32, device=loss.device)
    return torch.where(mean > 0, (loss / mean.clamp_min(1e-12) - 1.0).clamp(0.0, 1.0), torch.zeros_like(loss))


def loss_running_mean(loss: torch.Tensor | float, running_mean: torch.Tensor | float, step: int, decay: float = 0.99) -> torch.Tensor:
    """Exponential running mean of the fast loss; the first step (``step == 1``) starts it at the loss."""
    loss = torch.as_tensor(loss, dtype=torch.float32)
    if step <= 1:
        return loss.detach().clone()
    return decay * torch.as_tensor(running_mean, dtype=torch.float32, device=loss.device) + (1 - decay) * loss.detach()


def sleep_pressure(
    saturation: float,
    forgetting: float,
    novelty: float,
    *,
    saturation_weight: float,
    forgetting_weight: float,
    novelty_weight: float,
) -> float:
    return saturation_weight * saturation + forgetting_weight * forgetting + novelty_weight * novelty


def should_sleep(steps_since_sleep: int, pressure: float, *, min_interval: int, max_interval: int, threshold: float) -> bool:
    """Forced at ``max_interval``; allowed from ``min_interval`` when pressure reaches the threshold."""
    if steps_since_sleep >= max_interval:
        return True
    return steps_since_sleep >= min_interval and pressure >= threshold


def sleep_length(pressure: float, *, threshold: float, min_steps: int, max_steps: int) -> int:
    """``round(min + min(1, pressure / threshold) * (max - min))``."""
    return round(min_steps + min(1.0, max(pressure, 0.0) / threshold) * (max_steps - min_steps))


@dataclass
class SleepScheduler:
    min_interval: int
    max_interval: int
    threshold: float
    min_steps: int
    max_steps: int
    fixed: bool = False  # scheduler.policy=fixed: every max_interval steps for max_steps, pressure unread
    steps_since_sleep: int = 0

    def needs_pressure(self) -> bool:
        """Whether the pressure can change the decision now (else it need not be read off the device)."""
        if self.fixed or self.steps_since_sleep < self.min_interval:
            return False
        return self.steps_since_sleep < self.max_interval or self.min_steps != self.max_steps

    def tick(self) -> None:
        self.steps_since_sleep += 1

    def decide(self, pressure: float) -> int:
        """Sleep steps to take now (0 = stay awake)."""
        if self.fixed:
            return self.max_steps if self.steps_since_sleep >= self.max_interval else 0
        if not should_sleep(
            self.steps_since_sleep, pressure, min_interval=self.min_interval, max_interval=self.max_interval, threshold=self.threshold
        ):
            return 0
        return sleep_length(pressure, threshold=self.threshold, min_steps=self.min_steps, max_steps=self.max_steps)

    def slept(self) -> None:
        """After a sleep the pressure resets: the counter restarts (forgetting waits for a new evaluation)."""
        self.steps_since_sleep = 0

    def state_dict(self) -> dict:
        return {"steps_since_sleep": self.steps_since_sleep}

    def load_state_dict(self, state: dict) -> None:
        self.steps_since_sleep = int(state["steps_since_sleep"])
