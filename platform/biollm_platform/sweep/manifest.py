"""manifest.json: what a sweep ran, each trial's state, times, errors and output path.

Two kinds of process write it: the sweep's driver (trial states, heartbeat) and `biollm sweep stop`.
Every write holds a lock file beside the manifest (``.manifest.lock``) and goes through
``biollm_core.artifacts.write_json_atomic`` (temp file, fsync, rename), so a reader or a driver killed
mid-write never sees half a manifest. A stop request is sticky: a driver writing afterwards keeps it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from biollm_core.artifacts import write_json_atomic
from biollm_core.errors import UserError
from biollm_core.methods.registry import SEED_MODES

TrialState = Literal["PENDING", "RUNNING", "TERMINATED", "ERROR"]
SweepStatus = Literal["CREATED", "RUNNING", "FINISHED", "FAILED", "INTERRUPTED", "STOPPED", "SUBMITTED"]
MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
LOCK_TIMEOUT_S = 60.0  # a writer holds the lock for milliseconds; a minute means something is wrong

manifest_guard = threading.RLock()  # held by the driver's threads (Tune callbacks, heartbeat) around changes


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class TrialFailure(BaseModel):
    """Why a trial failed for good: enough to act on without opening Ray's logs."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Exception type raised in the trial (e.g. RuntimeError).")
    message: str = Field(description="The exception's message, one line.")
    attempt: int = Field(description="The attempt (1 = first start) that raised it.")
    log: str | None = Field(None, description="File with the full traceback.")

    def one_line(self) -> str:
        where = f"; traceback in {self.log}" if self.log else ""
        return f"{self.type}: {self.message} (attempt {self.attempt}{where})"


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
    error: str | None = Field(None, description="Last error, one line (the failure's one_line()).")
    failure: TrialFailure | None = Field(None, description="The cause of a failed trial.")
    attempts: int = Field(
        0, description="Times the trial was started: Tune starts, Train worker restarts, resumes and reruns."
    )
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
    job_error: str | None = Field(None, description="Remote: the failed Ray Job's error line.")
    storage: str | None = Field(
        None, description="Where trial artifacts live when not in this directory (a URI, or the head's path)."
    )
    remote_dir: str | None = Field(
        None, description="Remote: the sweep directory on the head, absolute, as its driver reported it."
    )
    fetched_at: str | None = Field(None, description="Remote: when `biollm sweep fetch` last brought it here.")
    driver_pid: int | None = None
    driver_host: str | None = Field(None, description="Host name of the driver process.")
    driver_started_at: float | None = Field(
        None, description="The driver process's start time (epoch s): tells a reused pid apart."
    )
    heartbeat_at: str | None = Field(None, description="ISO time the driver last said it was alive.")
    stop_requested_at: str | None = Field(None, description="When `biollm sweep stop` asked the driver to stop.")
    ray_logs: str | None = Field(None, description="Ray's log directory of this sweep's session (on its head).")
    trials: list[TrialRecord] = Field(default_factory=list)

    def trial(self, trial_id: str) -> TrialRecord:
        return next(t for t in self.trials if t.trial_id == trial_id)

    def counts(self) -> dict[str, int]:
        out = {"PENDING": 0, "RUNNING": 0, "TERMINATED": 0, "ERROR": 0}
        for trial in self.trials:
            out[trial.state] += 1
        return out


@contextmanager
def manifest_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold the sweep's manifest lock (this process's threads and other processes)."""
    # One FileLock object per path (is_singleton): nested holds in one thread re-enter instead of waiting
    with manifest_guard, FileLock(str(sweep_dir / LOCK), timeout=LOCK_TIMEOUT_S, is_singleton=True):
        yield


def _parse(path: Path) -> Manifest:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: corrupt manifest (not UTF-8 text at byte {error.start})") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read the manifest ({error.strerror})") from None
    try:
        return Manifest.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            detail = f"not valid JSON ({first['msg'].removeprefix('Invalid JSON: ')})"
        else:
            location = ".".join(str(p) for p in first["loc"]) or "<root>"
            detail = f"{location}: {first['msg']}"
        raise UserError(f"{path}: corrupt manifest: {detail}") from None


def read_manifest(sweep_dir: Path) -> Manifest:
    """The sweep's manifest; a missing, unreadable or corrupt one is a UserError (one line)."""
    path = sweep_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{sweep_dir}: not a sweep directory (no {MANIFEST})")
    return _parse(path)


def _merge_stop(sweep_dir: Path, manifest: Manifest) -> None:
    """Keep a stop request that another process wrote since this one read the manifest."""
    path = sweep_dir / MANIFEST
    if manifest.stop_requested_at is None and path.is_file():
        try:
            manifest.stop_requested_at = _parse(path).stop_requested_at
        except UserError:
            pass  # a corrupt manifest is replaced by this process's own record
    if manifest.stop_requested_at and manifest.status in ("CREATED", "RUNNING", "INTERRUPTED"):
        manifest.status = "STOPPED"


def write_manifest(sweep_dir: Path, manifest: Manifest) -> None:
    """Persist ``manifest`` under the lock; a stop request on disk wins over RUNNING/INTERRUPTED."""
    with manifest_lock(sweep_dir):
        _merge_stop(sweep_dir, manifest)
        write_json_atomic(sweep_dir / MANIFEST, manifest.model_dump(mode="json"))


def request_stop(sweep_dir: Path) -> Manifest:
    """Mark the sweep STOPPED (for good: its driver keeps the mark) and return the updated manifest."""
    with manifest_lock(sweep_dir):
        manifest = read_manifest(sweep_dir)
        manifest.stop_requested_at = manifest.stop_requested_at or now()
        _merge_stop(sweep_dir, manifest)
        write_json_atomic(sweep_dir / MANIFEST, manifest.model_dump(mode="json"))
    return manifest


def clear_stop(sweep_dir: Path, manifest: Manifest) -> None:
    """`sweep resume`: the user asks for the sweep to run again, so an earlier stop no longer applies."""
    with manifest_lock(sweep_dir):
        manifest.stop_requested_at = None
        write_json_atomic(sweep_dir / MANIFEST, manifest.model_dump(mode="json"))


def update_trial(sweep_dir: Path, manifest: Manifest, trial_id: str, **fields: Any) -> Manifest:
    """Set fields of one trial and persist the manifest; returns it for chaining."""
    record = manifest.trial(trial_id)
    for key, value in fields.items():
        setattr(record, key, value)
    write_manifest(sweep_dir, manifest)
    return manifest
