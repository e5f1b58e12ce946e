"""manifest.json: what a sweep ran, each trial's state, times, errors and output path.

One process writes it (the sweep's driver); writes are atomic (temp file + rename), so a reader or a
driver killed mid-write never sees half a manifest.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from biollm_core.errors import UserError
from biollm_core.methods.registry import SEED_MODES

TrialState = Literal["PENDING", "RUNNING", "TERMINATED", "ERROR"]
SweepStatus = Literal["CREATED", "RUNNING", "FINISHED", "FAILED", "INTERRUPTED", "STOPPED", "SUBMITTED"]
MANIFEST = "manifest.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class TrialRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trial_id: str = Field(description="<method>-seed<seed>[-<axis>=<value>...]")
    method: str = Field(description="The continual method (biollm_core.methods registry name).")
    seed: int = Field(description="The trial's seed.")
    axes: dict[str, Any] = Field(description="Grid axis (dotted key) -> value, seed and method included.")
    state: TrialState = Field("PENDING", description="PENDING, RUNNING, TERMINATED or ERROR.")
    out_dir: str = Field(description="Trial artifacts, relative to the sweep directory.")
    started_at: str | None = Field(None, description="ISO time the last attempt started.")
    ended_at: str | None = Field(None, description="ISO time the trial ended.")
    error: str | None = Field(None, description="Last error, one line.")
    attempts: int = Field(0, description="Times the trial was started (resumes and reruns included).")
    step: int | None = Field(None, description="Latest reported step.")
    config: dict[str, Any] = Field(default_factory=dict, description="The resolved run config.")

    @model_validator(mode="before")
    @classmethod
    def _seed_mode(cls, data: Any) -> Any:
        """A manifest written before methods existed names a trial's `mode` (sleep, nosleep)."""
        if isinstance(data, dict) and "mode" in data and "method" not in data:
            mode = data["mode"]
            data = {k: v for k, v in data.items() if k != "mode"}
            data["method"] = SEED_MODES.get(mode, mode)
            axes = dict(data.get("axes") or {})
            if "mode" in axes:
                axes["method"] = SEED_MODES.get(axes["mode"], axes.pop("mode"))
                axes.pop("mode", None)
            data["axes"] = axes
        return data


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sweep_id: str
    name: str
    created_at: str = Field(default_factory=now)
    status: SweepStatus = "CREATED"
    address: str | None = None
    job_id: str | None = None
    storage: str | None = Field(
        None,
        description="Where trial artifacts live when not in this directory (a URI, a path on a remote head).",
    )
    driver_pid: int | None = None
    trials: list[TrialRecord] = Field(default_factory=list)

    def trial(self, trial_id: str) -> TrialRecord:
        return next(t for t in self.trials if t.trial_id == trial_id)

    def counts(self) -> dict[str, int]:
        out = {"PENDING": 0, "RUNNING": 0, "TERMINATED": 0, "ERROR": 0}
        for trial in self.trials:
            out[trial.state] += 1
        return out


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temp file in the same directory and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(sweep_dir: Path, manifest: Manifest) -> None:
    write_json_atomic(sweep_dir / MANIFEST, manifest.model_dump(mode="json"))


def read_manifest(sweep_dir: Path) -> Manifest:
    path = sweep_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{sweep_dir}: not a sweep directory (no {MANIFEST})")
    return Manifest.model_validate_json(path.read_text())


def update_trial(sweep_dir: Path, manifest: Manifest, trial_id: str, **fields: Any) -> Manifest:
    """Set fields of one trial and persist the manifest; returns it for chaining."""
    record = manifest.trial(trial_id)
    for key, value in fields.items():
        setattr(record, key, value)
    write_manifest(sweep_dir, manifest)
    return manifest
