"""Expand a sweep into trials: the product of the grid's axes, each with its resolved run config.

Every trial's config is loaded with the same loader as `biollm train`, so an axis that is not a config
key, or a value the config refuses, fails here, before anything is scheduled.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from biollm_core.config.schema import RunConfig
from biollm_core.distributed import Distributed
from biollm_core.errors import UserError
from biollm_core.methods.registry import SECTIONS

from .schema import SweepSpec, axis_line

# Run-config keys that may name a local file or directory. Ray Train workers run in a working directory
# of their own, so a relative path that exists where the sweep is expanded is made absolute here.
LOCAL_PATH_KEYS = ("benchmark.local_path", "benchmark.path", "benchmark.tokenizer_name", "model.hf_model_name")


@dataclass(frozen=True)
class TrialSpec:
    """One cell of the grid: what to run and where its artifacts go (relative to the sweep dir)."""

    trial_id: str
    method: str
    seed: int
    axes: dict[str, Any]
    overrides: list[str]
    override_files: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def out_dir(self) -> str:
        return self.trial_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(**data)


METHOD_AXIS = "method"
SEED_MODE_AXIS = "mode"  # the seed's spelling of the method axis (sleep, nosleep)


def format_value(value: Any) -> str:
    """A grid value in the override form the config loader reads (`true`, `null`, `[a,b]`, `0.1`)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def check_config_key(key: str) -> None:
    """Raise ValueError unless ``key`` (dotted, aliases allowed) names a field of the run config.

    `mode` (the seed's method axis) is one; under `method` a key of any method's section is one (the
    trial's own method then validates it)."""
    if key == SEED_MODE_AXIS:
        return
    models: list[type[BaseModel]] = [RunConfig]
    walked: list[str] = []
    for part in key.split("."):
        if not models:
            raise ValueError(f"`{'.'.join(walked)}` is a value, it has no key `{part}`")
        fields = {name: f for model in models for name, f in model.model_fields.items()}
        fields.update({f.alias: f for model in models for f in model.model_fields.values() if f.alias})
        if part not in fields:
            where = ".".join(walked) or "the run config"
            known = ", ".join(sorted({name for model in models for name in model.model_fields}))
            raise ValueError(f"`{key}` is not a config key: {where} has no `{part}` (known: {known})")
        annotation = fields[part].annotation
        if walked == [] and part == METHOD_AXIS:
            models = list(SECTIONS.values())
        else:
            models = [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []
        walked.append(part)


def local_path_overrides(config: RunConfig, cwd: Path) -> list[str]:
    """`key=/absolute/path` for each ``LOCAL_PATH_KEYS`` value that is a relative (or ~) path existing here.

    Hub ids (`gpt2`, `Qwen/Qwen2.5-0.5B-Instruct`) and paths that do not exist here stay as given.
    """
    out = []
    for key in LOCAL_PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if not value:
            continue
        path = Path(value).expanduser()
        if str(path) == value and path.is_absolute():
            continue
        path = path if path.is_absolute() else cwd / path
        if path.exists():
            out.append(f"{key}={path.resolve()}")
    return out


def _trial_id(method: str, seed: int, extra: dict[str, Any]) -> str:
    parts = [f"{method}-seed{seed}"] + [f"{key}={format_value(value)}" for key, value in extra.items()]
    return re.sub(r"[^A-Za-z0-9_.=,+\-\[\]]", "_", "-".join(parts))


def _wandb_overrides(spec: SweepSpec, sweep_id: str) -> list[str]:
    if not spec.wandb.enabled:
        return []
    settings = spec.wandb
    out = [
        "logging.use_wandb=true",
        f"logging.wandb_group={settings.group or sweep_id}",
        f"logging.wandb_tags={format_value([*settings.tags, spec.name])}",
    ]
    for key, value in (("project", settings.project), ("mode", settings.mode), ("entity", settings.entity)):
        if value:  # unset keys leave the trial's config, then the environment (WANDB_PROJECT, ...) in charge
            out.append(f"logging.wandb_{key}={value}")
    if not settings.log_checkpoints:
        out.append("logging.wandb_log_checkpoints=false")
    return out


def _blamed_axis(message: str, axes: dict[str, Any]) -> str | None:
    """The axis whose override the loader's message names (`... (from override 'k=v')`), if any."""
    named = [key for key, value in axes.items() if f"override '{key}={format_value(value)}'" in message]
    return named[-1] if named else None


def expand(
    spec: SweepSpec, sweep_file: Path, sweep_id: str, cli_overrides: tuple[str, ...] = ()
) -> list[TrialSpec]:
    """The trials of ``spec`` in grid order; every config validated. Raises UserError on a bad axis."""
    from biollm_core.config.loader import config_to_dict, load_config

    for override in cli_overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in spec.grid:
            raise UserError(
                f"override `{override}` sets `{key}`, which is a grid axis of {sweep_file}; "
                "change the grid instead"
            )
    for axis in spec.grid:
        try:
            check_config_key(axis)
        except ValueError as error:
            raise UserError(f"{axis_line(sweep_file, axis)}: grid.{axis}: {error}") from None

    files = [str((sweep_file.parent / f).resolve()) for f in spec.base.files]
    for f in files:
        if not Path(f).is_file():
            raise UserError(f"{sweep_file}: base.files: {f} not found")
    base = [*spec.base.overrides, *_wandb_overrides(spec, sweep_id), *cli_overrides]
    trials: list[TrialSpec] = []
    for values in itertools.product(*spec.grid.values()):
        axes = dict(zip(spec.grid, values, strict=True))
        overrides = [*base, *(f"{key}={format_value(value)}" for key, value in axes.items())]
        try:
            config = load_config(overrides=overrides, override_files=[Path(f) for f in files])
        except (UserError, ValidationError, ValueError) as error:
            first = str(error).strip().splitlines()[0]
            axis = _blamed_axis(first, axes)
            where = axis_line(sweep_file, axis) if axis else str(sweep_file)
            raise UserError(f"{where}: trial {axes}: {first}") from None
        try:  # each rank trains on an equal shard of every global batch: the engine's own check, at submit
            Distributed(0, spec.resources.workers_per_trial).check_divisible("train.batch_size", config.train.batch_size)
        except ValueError as error:
            workers = spec.resources.workers_per_trial
            raise UserError(f"{sweep_file}: trial {axes}: {error} (resources.workers_per_trial={workers})") from None
        if local := local_path_overrides(config, Path.cwd()):
            overrides.extend(local)
            config = load_config(overrides=overrides, override_files=[Path(f) for f in files])
        extra = {k: v for k, v in axes.items() if k not in ("seed", METHOD_AXIS, SEED_MODE_AXIS)}
        trial_id = _trial_id(config.method.name, config.seed, extra)
        if extra and config.logging.run_name is None:
            overrides.append(f"logging.run_name={trial_id}")
            config = load_config(overrides=overrides, override_files=[Path(f) for f in files])
        # Axes name the method by its registered name, whichever spelling the grid used.
        rest = {k: v for k, v in axes.items() if k not in ("seed", METHOD_AXIS, SEED_MODE_AXIS)}
        axes = {"seed": config.seed, METHOD_AXIS: config.method.name, **rest}
        trials.append(
            TrialSpec(trial_id, config.method.name, config.seed, axes, overrides, files, config_to_dict(config))
        )
    ids = [t.trial_id for t in trials]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise UserError(
            f"{sweep_file}: grid gives several trials named {duplicates[0]}: axis values must differ"
        )
    return trials
