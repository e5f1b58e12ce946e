"""The sweep file as validated data: a base run config, a grid, resources, storage and a comparison.

A sweep file is YAML, read with the run configs' YAML 1.2 reader (``off`` stays text, ``1e-3`` is a
number: ``biollm_core.config.yaml_source``). ``load_sweep`` refuses unknown keys with their path and the file's line, so a
typo never turns into a silently different experiment. Grid axes are run-config keys; they are checked
against the run config when the grid is expanded (``expand.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biollm_core.config.yaml_source import load_yaml_document, read_yaml_text
from biollm_core.errors import UserError
from biollm_core.methods.registry import DEFAULT_CONTROL, SEED_MODES

Scalar = str | int | float | bool | None
# A mapping sets several keys under the axis at once: `method: [cls, {name: ewc, lambda: 1.0e+7}]`
# gives one method its own settings (its trials are still named and paired by the method's name).
GridValue = Scalar | list[str | int | float | bool] | dict[str, Scalar | list[str | int | float | bool]]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BaseRun(_Section):
    overrides: list[str] = Field(
        default_factory=list,
        description="Run-config overrides in the `biollm train` form (`train=cpu`, `experts.num_experts=16`) "
        "for every trial.",
    )
    files: list[str] = Field(
        default_factory=list,
        description="YAML override files (paths relative to the sweep file), applied before `overrides`.",
    )


class Resources(_Section):
    workers_per_trial: int = Field(
        1, ge=1,
        description="Ray Train workers per trial: the ranks of one data-parallel run (TorchTrainer's process "
        "group, gloo on CPU, nccl on GPU). Each global batch (train.batch_size, which it must divide) is split "
        "across the ranks and the gradients are summed, so the figures match one worker's; rank 0 writes the "
        "trial's artifacts.",
    )
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs reserved by each Train worker.")
    gpus_per_worker: float = Field(
        0.0, ge=0, description="GPUs per Train worker; fractions (0.5) share one GPU between trials."
    )
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="Trials running at once; null = as many as the cluster's resources allow."
    )
    executor: Literal["train_workers", "train_local"] = Field(
        "train_workers",
        description="How a trial runs the engine: `train_workers` = a Ray Train run with its own worker "
        "group (retries restart the workers); `train_local` = the same train loop in the Tune trial's "
        "own process, which holds the worker's CPUs/GPUs (one worker only; less fixed cost per trial; "
        "retries restart the trial from its last checkpoint).",
    )

    @model_validator(mode="after")
    def _local_is_one_worker(self) -> Resources:
        if self.executor == "train_local" and self.workers_per_trial != 1:
            raise ValueError(
                f"executor train_local runs one worker per trial (workers_per_trial is {self.workers_per_trial})"
            )
        return self

    @field_validator("gpus_per_worker")
    @classmethod
    def _fraction_or_whole(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError("a fractional GPU request must be at most 1 (use whole GPUs above 1)")
        return value


class Wandb(_Section):
    enabled: bool = Field(
        False, description="Track every trial in Weights & Biases (one run per trial, grouped by sweep)."
    )
    project: str | None = Field(
        None, description="W&B project; null (unset) = the trials' logging.wandb_project, else WANDB_PROJECT, else biollm-cls."
    )
    entity: str | None = Field(None, description="W&B entity; null (unset) = WANDB_ENTITY.")
    mode: Literal["offline", "online", "disabled"] | None = Field(
        None,
        description="W&B mode; null (unset) = the trials' logging.wandb_mode (offline); WANDB_MODE overrides; "
        "online without an API key (WANDB_API_KEY or `wandb login`) falls back to offline.",
    )
    group: str | None = Field(None, description="W&B group; default the sweep id.")
    tags: list[str] = Field(default_factory=list, description="Tags added to every trial's W&B run.")
    log_checkpoints: bool = Field(
        True, description="Upload every trial's checkpoints as W&B model artifacts (their size is logged); false keeps them on disk only."
    )


class Compare(_Section):
    metric: str = Field(
        "final_seen_acc_avg", description="summary.json key of the headline comparison printed at the end."
    )
    axis: str = Field("method", description="The grid axis whose values are compared (any axis: method, a config key).")
    control: str | bool | int | float = Field(DEFAULT_CONTROL, description="The axis value every other one is compared with.")
    treatment: str | bool | int | float | None = Field(
        None, description="Compare only this value with the control; null = every other value of the axis."
    )
    pair_by: str = Field("seed", description="Axis that pairs a treatment trial with its control trial.")

    @model_validator(mode="before")
    @classmethod
    def _seed_spellings(cls, data: Any) -> Any:
        """The seed's `mode` axis and its values (sleep, nosleep) name methods (cls, nosleep)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("axis", "method") in ("mode", "method"):
            data["axis"] = "method"
            for key in ("treatment", "control"):
                if isinstance(data.get(key), str):
                    data[key] = SEED_MODES.get(data[key], data[key])
        return data


class SweepSpec(_Section):
    name: str = Field(
        ..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Sweep name: the prefix of the sweep id."
    )
    description: str = Field("", description="Free text shown by `biollm sweep list`.")
    base: BaseRun = Field(default_factory=BaseRun, description="The run config every trial starts from.")
    grid: dict[str, list[GridValue]] = Field(
        ..., description="Axes: run-config key -> values; trials are the product (seed and method included: "
        "`method: [cls, er]`; the seed's `mode: [sleep, nosleep]` means method cls, nosleep). A mapping value "
        "sets keys below the axis together: `method: [cls, {name: ewc, lambda: 1.0e+7}]`."
    )
    resources: Resources = Field(
        default_factory=Resources, description="Resources of one trial and the concurrency limit."
    )
    storage: str = Field(
        "outputs/sweeps",
        description="Root for sweep directories (<storage>/<sweep_id>/): a path, or a URI (s3://, gs://) "
        "for multi-node clusters.",
    )
    retries: int = Field(
        2, ge=0, description="Times a trial whose worker dies is restarted from its last checkpoint."
    )
    wandb: Wandb = Field(default_factory=Wandb, description="Weights & Biases settings for every trial.")
    compare: Compare = Field(
        default_factory=Compare,
        description="The paired comparison printed at the end of the sweep: every value of `axis` against `control`.",
    )

    @field_validator("grid")
    @classmethod
    def _grid_not_empty(cls, grid: dict[str, list[GridValue]]) -> dict[str, list[GridValue]]:
        if not grid:
            raise ValueError("the grid is empty: give at least one axis, e.g. `seed: [7, 42, 123]`")
        for key, values in grid.items():
            if not values:
                raise ValueError(f"axis `{key}` has no values: give a non-empty list")
            if len(set(map(repr, values))) != len(values):
                raise ValueError(f"axis `{key}` repeats a value: {values}")
        return grid


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest one that exists)."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            node, line = match[1], match[0].start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def parse_sweep(text: str, source: str = "<sweep>") -> SweepSpec:
    """Validate sweep YAML; an error is a UserError naming ``source:line``, the key path and the problem."""
    data, root = load_yaml_document(text, source)
    if not isinstance(data, dict):
        raise UserError(
            f"{source}: a sweep file is a YAML mapping (name, base, grid, ...), got {type(data).__name__}"
        )
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and "[" in p))
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
        path = ".".join(str(p) for p in loc) or "<root>"
        if first["type"] == "extra_forbidden":
            detail = "unknown key"
        elif first["type"] == "missing":
            detail = "required key is missing"
        else:
            detail = f"{first['msg']} (given: {first.get('input')!r})"
        raise UserError(f"{where}: {path}: {detail}") from None


def load_sweep(path: Path) -> SweepSpec:
    """Read and validate a sweep file."""
    if not path.is_file():
        raise UserError(f"{path}: sweep file not found")
    return parse_sweep(read_yaml_text(path, "sweep file"), str(path))


def axis_line(path: Path, axis: str) -> str:
    """``file:line`` of a grid axis, for errors raised while expanding the grid."""
    try:
        line = _line_of(load_yaml_document(read_yaml_text(path, "sweep file"), str(path))[1], ("grid", axis))
    except UserError:
        line = None
    return f"{path}:{line}" if line else str(path)


def sweep_json_schema() -> dict[str, Any]:
    """The JSON Schema of a sweep file (printed by `biollm sweep schema`; shipped as schemas/sweep.schema.json).

    Grid axes are restricted to the run config's keys, so an editor completes them and flags a typo.
    """
    from biollm_core.config.file_schema import SCHEMA_DIALECT, config_key_paths

    schema = SweepSpec.model_json_schema()
    schema["properties"]["grid"]["propertyNames"] = {"enum": config_key_paths()}
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": "https://biollm.invalid/schemas/sweep.schema.json",
        "title": "BioLLM sweep file",
        "description": "A sweep: a base run config, a grid of run-config keys, the resources of one trial, "
        "storage, W&B and the paired comparison. Values are YAML 1.2.",
        **{k: v for k, v in schema.items() if k != "title"},
    }
