"""The continual methods by name: each one's config section and where its implementation lives.

This module is the one place, besides the method files themselves, that knows methods by name. It
imports no torch: the run-config schema (``config/schema.py``) builds its discriminated ``method``
union from the sections below, and ``biollm config show`` must stay fast. ``build_method`` imports the
chosen implementation only when a run starts.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class MethodSection(BaseModel):
    """Base of every method section: unknown keys are refused, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class ClsConfig(MethodSection):
    name: Literal["cls"] = Field("cls", description="The CLS learner (spec §1-§6): hippocampus awake, consolidation into the neocortex in sleep. Its settings are the experts, replay, consolidation, ewc and scheduler sections.")


class NosleepConfig(MethodSection):
    name: Literal["nosleep"] = Field("nosleep", description="The CLS learner's ablation: the hippocampus learns awake, nothing ever consolidates (no sleep, no refresh, no replay memory).")


class FinetuneConfig(MethodSection):
    name: Literal["finetune"] = Field("finetune", description="The neocortex fine-tuned on the current batch at train.lr, nothing remembered: the lower bound.")


class EwcMethodConfig(MethodSection):
    name: Literal["ewc"] = Field("ewc", description="Fine-tuning plus online EWC (Schwarz et al. 2018): an empirical Fisher taken at each task switch.")
    lambda_: float = Field(100.0, ge=0, alias="lambda", description="Penalty strength: lambda/2 * sum_i F_i (theta_i - theta*_i)^2 with the raw empirical Fisher (sweep it; see sweeps/toy_methods.yaml).")
    decay: float = Field(1.0, ge=0, le=1, description="Online EWC's gamma: F <- gamma * F + F_task at each task switch (1 keeps every task's Fisher).")
    fisher_samples: int = Field(256, ge=1, description="Training examples of the finished task whose per-sample gradients make its empirical Fisher.")


class LwfConfig(MethodSection):
    name: Literal["lwf"] = Field("lwf", description="Learning without Forgetting (Li and Hoiem 2016): fine-tuning plus distillation from the model frozen at the last task switch.")
    alpha: float = Field(1.0, ge=0, description="Weight of the distillation term.")
    temperature: float = Field(2.0, gt=0, description="Distillation temperature (the paper's 2); the term is scaled by T^2.")


class ErConfig(MethodSection):
    name: Literal["er"] = Field("er", description="Experience replay (Chaudhry et al. 2019): each step trains on the current batch plus an equal-size batch from a reservoir of replay.capacity labelled episodes.")
    replay_batch_size: int | None = Field(None, ge=1, description="Replayed episodes per step; null = train.batch_size (an equal-size batch).")


class DerppConfig(MethodSection):
    name: Literal["derpp"] = Field("derpp", description="DER++ (Buzzega et al. 2020): experience replay plus an MSE on the logits stored with each episode.")
    alpha: float = Field(0.1, ge=0, description="Weight of the MSE between current and stored logits on one replayed batch.")
    beta: float = Field(0.5, ge=0, description="Weight of the cross-entropy on the labels of a second replayed batch.")
    replay_batch_size: int | None = Field(None, ge=1, description="Episodes in each of the two replayed batches; null = train.batch_size.")


class JointConfig(MethodSection):
    name: Literal["joint"] = Field("joint", description="The neocortex trained on batches drawn i.i.d. from every task's training stream at once: the upper bound.")


MethodConfig = Annotated[
    ClsConfig | NosleepConfig | FinetuneConfig | EwcMethodConfig | LwfConfig | ErConfig | DerppConfig | JointConfig,
    Field(discriminator="name"),
]
SECTIONS: dict[str, type[MethodSection]] = {
    section.model_fields["name"].default: section
    for section in (ClsConfig, NosleepConfig, FinetuneConfig, EwcMethodConfig, LwfConfig, ErConfig, DerppConfig, JointConfig)
}
METHOD_NAMES: tuple[str, ...] = tuple(SECTIONS)

CLS, NOSLEEP = ClsConfig().name, NosleepConfig().name
DEFAULT_CONTROL = NOSLEEP  # the naive lower bound every comparison is made against unless a sweep says otherwise
SEED_MODES: dict[str, str] = {"sleep": CLS, "nosleep": NOSLEEP}  # the seed's `mode=` spellings


@dataclass(frozen=True)
class MethodInfo:
    """What the platform may know of a method without importing torch."""

    name: str
    consolidates_in_sleep: bool  # has sleep events (plots mark them)
    has_hippocampus: bool  # combined and base models differ
    step_cost: float  # time of a training step relative to fine-tuning's, roughly (orders a sweep's trials)


# step_cost: wall time of a whole train=cpu run relative to finetune's (one thread, seed 7: finetune 11 s,
# ewc 14.5 s with its Fisher passes, lwf 15 s with the teacher's forward pass, er 16 s and derpp 23 s
# with one and two replayed batches, joint 10 s; cls and nosleep wake steps cost about a fine-tuning
# step, cls's sleeps are counted apart).
INFO: dict[str, MethodInfo] = {
    CLS: MethodInfo(CLS, consolidates_in_sleep=True, has_hippocampus=True, step_cost=1.0),
    NOSLEEP: MethodInfo(NOSLEEP, consolidates_in_sleep=False, has_hippocampus=True, step_cost=1.0),
    "finetune": MethodInfo("finetune", False, False, 1.0),
    "ewc": MethodInfo("ewc", False, False, 1.2),
    "lwf": MethodInfo("lwf", False, False, 1.3),
    "er": MethodInfo("er", False, False, 1.5),
    "derpp": MethodInfo("derpp", False, False, 2.0),
    "joint": MethodInfo("joint", False, False, 1.0),
}


def implementation(name: str) -> ModuleType:
    """The module implementing method ``name``: its ``build(config, context)`` returns a ``ContinualMethod``.

    Imports torch and the method's code; call it only when a run starts."""
    if name not in SECTIONS:
        raise KeyError(f"unknown method {name!r} (known: {', '.join(METHOD_NAMES)})")
    return importlib.import_module(f"biollm_core.methods.{name}")
