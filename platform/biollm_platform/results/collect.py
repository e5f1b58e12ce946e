"""Read a sweep directory from disk: ``manifest.json``, each trial's ``summary.json`` and ``metrics.jsonl``.

No Ray, no network. A file that is missing or unreadable becomes a recorded ``Problem`` naming its
path (and line), never an exception: one bad trial must not hide the others. Only a missing or
unreadable ``manifest.json`` stops the read (there is nothing to aggregate without it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biollm_core.errors import UserError
from biollm_core.methods.registry import SEED_MODES

DEFAULT_CURVE_METRICS: tuple[str, ...] = ("seen_acc", "base_seen_acc", "old_task_loss")


@dataclass(frozen=True)
class Problem:
    """Something wrong with a file of the sweep: where and what."""

    path: Path
    message: str
    trial_id: str | None = None


@dataclass
class TrialRecord:
    """One trial as read from disk. ``summary`` is None when the trial failed or is incomplete."""

    trial_id: str
    axes: dict[str, Any]
    state: str
    out_dir: Path
    summary: dict[str, Any] | None
    failure: str | None = None  # why the trial cannot be used, None when it can
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # metric -> [(step, value)]
    task_starts: list[tuple[int, int]] = field(default_factory=list)  # [(first step, task_id)]
    sleep_steps: list[int] = field(default_factory=list)  # steps at which a sleep ran (methods that sleep)
    pressure: list[tuple[int, float]] = field(default_factory=list)  # sleep pressure per step (methods that sleep)
    pressure_threshold: float | None = None  # the trial's scheduler.pressure_threshold

    @property
    def usable(self) -> bool:
        return self.summary is not None and self.failure is None

    @property
    def method(self) -> str | None:
        return self.axes.get("method")


@dataclass
class SweepData:
    """Everything read from one sweep directory."""

    sweep_dir: Path
    sweep_id: str
    name: str | None
    trials: list[TrialRecord]
    problems: list[Problem]


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(value, None) or (None, one-line reason naming path:line:column)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, f"{path}: file not found"
    except OSError as error:
        return None, f"{path}: cannot read ({error.strerror})"
    except UnicodeDecodeError as error:
        return None, f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, f"{path}:{error.lineno}:{error.colno}: not valid JSON ({error.msg})"


def load_manifest(sweep_dir: Path) -> dict[str, Any]:
    """The sweep's manifest; UserError when it is missing, not JSON, or has no trial list."""
    path = sweep_dir / "manifest.json"
    if not path.is_file():
        raise UserError(
            f"{path}: no manifest.json; expected a sweep directory written by `biollm sweep submit`"
        )
    manifest, reason = _read_json(path)
    if reason is not None:
        raise UserError(reason)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("trials"), list):
        raise UserError(f"{path}: expected a JSON object with a 'trials' list")
    return manifest


PRESSURE = "sleep_pressure"


def _read_curves(
    path: Path, curve_metrics: Sequence[str], trial_id: str, problems: list[Problem]
) -> tuple[dict[str, list[tuple[int, float]]], list[tuple[int, int]], list[int]]:
    """Per-step series of ``curve_metrics``, the steps where the task changes and the steps where a sleep
    ran (``sleep_count`` grew), from metrics.jsonl."""
    curves: dict[str, list[tuple[int, float]]] = {name: [] for name in (*curve_metrics, PRESSURE)}
    task_starts: list[tuple[int, int]] = []
    sleeps: list[int] = []
    if not path.is_file():
        problems.append(
            Problem(path, f"{path}: file not found (no learning curves for this trial)", trial_id)
        )
        return curves, task_starts, sleeps
    slept = 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                step = int(record["step"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                # A run killed mid-write leaves a partial last line: skip it, say where.
                problems.append(
                    Problem(path, f"{path}:{line_number}: unreadable record skipped ({error})", trial_id)
                )
                continue
            task_id = record.get("task_id")
            if isinstance(task_id, int) and (not task_starts or task_starts[-1][1] != task_id):
                task_starts.append((step, task_id))
            count = record.get("sleep_count")
            if isinstance(count, int) and count > slept:
                sleeps.append(step)
                slept = count
            for name in curves:
                value = record.get(name)
                if isinstance(value, int | float) and math.isfinite(value):
                    curves[name].append((step, float(value)))
    return curves, task_starts, sleeps


def _read_trial(
    sweep_dir: Path, entry: Any, index: int, curve_metrics: Sequence[str], problems: list[Problem]
) -> TrialRecord | None:
    manifest_path = sweep_dir / "manifest.json"
    if not isinstance(entry, dict) or not isinstance(entry.get("trial_id"), str):
        problems.append(
            Problem(manifest_path, f"{manifest_path}: trials[{index}] has no 'trial_id'; skipped")
        )
        return None
    trial_id = entry["trial_id"]
    axes = dict(entry.get("axes") or {})
    for key in ("seed", "method"):  # the top-level copies are authoritative if the axes lack them
        if key in entry and key not in axes:
            axes[key] = entry[key]
    if "mode" in axes and "method" not in axes:  # a sweep written before methods: the seed's spelling
        mode = axes.pop("mode")
        axes["method"] = SEED_MODES.get(mode, mode)
    out_dir = sweep_dir / str(entry.get("out_dir") or trial_id)
    state = str(entry.get("state") or "UNKNOWN")
    trial = TrialRecord(trial_id, axes, state, out_dir, summary=None)
    summary_path = out_dir / "summary.json"
    if state == "ERROR":
        error = str(entry.get("error") or "no error message recorded").strip().splitlines()
        trial.failure = f"state ERROR: {error[-1] if error else ''}"
    else:
        summary, reason = _read_json(summary_path)
        if reason is not None:
            trial.failure = f"state {state}; {reason}"
            if summary_path.exists():  # a file that is there but unreadable is a problem, not just absence
                problems.append(Problem(summary_path, reason, trial_id))
        elif not isinstance(summary, dict):
            trial.failure = f"{summary_path}: expected a JSON object, got {type(summary).__name__}"
            problems.append(Problem(summary_path, trial.failure, trial_id))
        else:
            trial.summary = summary
    if trial.usable:
        trial.curves, trial.task_starts, trial.sleep_steps = _read_curves(
            out_dir / "metrics.jsonl", curve_metrics, trial_id, problems
        )
        trial.pressure = trial.curves.pop(PRESSURE, [])
        threshold = ((entry.get("config") or {}).get("scheduler") or {}).get("pressure_threshold")
        trial.pressure_threshold = float(threshold) if isinstance(threshold, int | float) else None
    return trial


def load_sweep(sweep_dir: Path, curve_metrics: Sequence[str] = DEFAULT_CURVE_METRICS) -> SweepData:
    """Read the manifest and every trial's artifacts under ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    manifest = load_manifest(sweep_dir)
    problems: list[Problem] = []
    trials = [
        trial
        for index, entry in enumerate(manifest["trials"])
        if (trial := _read_trial(sweep_dir, entry, index, curve_metrics, problems)) is not None
    ]
    sweep_id = str(manifest.get("sweep_id") or sweep_dir.name)
    return SweepData(sweep_dir, sweep_id, manifest.get("name"), trials, problems)
