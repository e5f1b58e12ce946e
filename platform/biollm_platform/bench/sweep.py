"""`biollm bench sweep`: what Ray costs a sweep, against the MVP's one-`biollm train`-after-another batch.

(a) sequential: every trial of the grid as its own `biollm train` subprocess, one after another, the
way the original MVP's batch script ran an ablation; (b) ray: the same trials through the Ray sweep
(`runner.submit_local`, the code `biollm sweep submit` runs) with the sweep file's executor and
resources. Both on this machine, artifacts in a temporary directory.

Ray's fixed cost per trial is what a trial spends outside the engine's steps: from the trial's start
(manifest ``started_at``) to the end of its first engine step (``ray_timing.json`` ``first_step_at``),
plus from its last step (``last_step_at``) to the trial's end (manifest ``ended_at``).

What bounds the ratio: the trials' engine steps (first step to last step) run on one worker's CPUs each,
while a sequential `biollm train` has the whole machine; the sum of the step spans divided by the
trials Ray ran at once is the Ray wall time with no fixed cost and perfect packing
(``ray_wall_bound_s``), and ``ratio_bound`` is that over the sequential time. ``ray_report_s`` is the mean time a trial's engine
waited in Ray's report calls (inside its step span, so not part of the fixed cost above).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from biollm_core.errors import UserError

TIMING = "ray_timing.json"


def biollm_command() -> list[str]:
    """The `biollm` console script of this environment (or the same entry point through this Python)."""
    script = Path(sys.executable).parent / "biollm"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from biollm_platform.cli.app import main; main()"]


def train_command(trial: Any, out_dir: Path) -> list[str]:
    """`biollm train` for one expanded trial (``expand.TrialSpec``): its overrides, files and --out."""
    files = [arg for f in trial.override_files for arg in ("--file", str(f))]
    return [*biollm_command(), "train", *trial.overrides, *files, "--out", str(out_dir), "--quiet"]


def run_sequential(
    trials: Sequence[Any], root: Path, *, on_trial: Callable[[str, float], None] | None = None
) -> dict[str, float]:
    """Run each trial as a `biollm train` subprocess, one after another; returns trial id -> seconds."""
    times: dict[str, float] = {}
    for trial in trials:
        started = time.perf_counter()
        done = subprocess.run(train_command(trial, root / trial.trial_id), capture_output=True, text=True)
        times[trial.trial_id] = time.perf_counter() - started
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"`biollm train` for {trial.trial_id} exited {done.returncode}: {tail[0]}")
        if on_trial:
            on_trial(trial.trial_id, times[trial.trial_id])
    return times


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def trial_fixed_cost(record: dict[str, Any], timing: list[dict[str, Any]] | dict[str, Any]) -> dict[str, float]:
    """One trial's fixed cost from its manifest record and ray_timing.json (the last attempt counts).

    ``start_s``: trial start -> end of the first engine step; ``end_s``: last engine step -> trial end.
    """
    attempts = timing if isinstance(timing, list) else [timing]
    if not attempts or not record.get("started_at") or not record.get("ended_at"):
        raise ValueError(f"trial {record.get('trial_id')}: no finished attempt to time")
    last = attempts[-1]
    if last.get("first_step_at") is None or last.get("last_step_at") is None:
        raise ValueError(f"trial {record.get('trial_id')}: its engine ran no step")
    start_s = last["first_step_at"] - _epoch(record["started_at"])
    end_s = _epoch(record["ended_at"]) - last["last_step_at"]
    steps_s = last["last_step_at"] - last["first_step_at"]
    return {"start_s": start_s, "end_s": end_s, "total_s": start_s + end_s, "steps_s": steps_s,
            "report_s": float(last.get("report_s") or 0.0)}


def max_concurrent(records: Sequence[dict[str, Any]]) -> int:
    """The most trials that ran at once, from the manifest's start and end times."""
    events = sorted(
        (_epoch(r[key]), delta)
        for r in records
        if r.get("started_at") and r.get("ended_at")
        for key, delta in (("started_at", 1), ("ended_at", -1))
    )
    running = peak = 0
    for _, delta in events:  # at equal times an end (-1) sorts before a start (+1)
        running += delta
        peak = max(peak, running)
    return peak


def fixed_costs(sweep_dir: Path, records: Sequence[dict[str, Any]] | None = None) -> dict[str, dict[str, float]]:
    """Trial id -> fixed cost (see ``trial_fixed_cost``) for every trial of a finished local sweep.

    ``records``: the manifest's trial records, when the caller has read them already.
    """
    if records is None:
        records = json.loads((sweep_dir / "manifest.json").read_text())["trials"]
    out = {}
    for record in records:
        path = sweep_dir / record["out_dir"] / TIMING
        if not path.is_file():
            raise ValueError(f"trial {record['trial_id']}: {path} is missing (did the trial run on Ray?)")
        out[record["trial_id"]] = trial_fixed_cost(record, json.loads(path.read_text()))
    return out


def summarize(
    sequential: dict[str, float], ray_s: float, costs: dict[str, dict[str, float]], slots: int = 1
) -> dict[str, Any]:
    """The bench's figures: wall times, their ratio, the fixed cost per trial (mean and max), and the
    bound on Ray's wall time set by the engine steps alone on ``slots`` trials at once."""
    sequential_s = sum(sequential.values())
    bound_s = sum(c["steps_s"] for c in costs.values()) / max(slots, 1)
    totals = [c["total_s"] for c in costs.values()]

    def mean(key: str) -> float:
        return sum(c[key] for c in costs.values()) / len(costs)

    return {
        "trials": len(sequential),
        "sequential_s": sequential_s,
        "ray_s": ray_s,
        "ratio": ray_s / sequential_s,
        "ray_fixed_cost_per_trial_s": mean("total_s"),
        "ray_fixed_cost_per_trial_max_s": max(totals),
        "ray_fixed_cost_start_s": mean("start_s"),
        "ray_fixed_cost_end_s": mean("end_s"),
        "ray_report_s": mean("report_s"),  # inside the step spans: the engine waiting in Ray's report calls
        "ray_concurrent_trials": slots,
        "ray_wall_bound_s": bound_s,
        "ratio_bound": bound_s / sequential_s,
        "sequential_trial_s": sequential,
        "ray_trial_fixed_cost_s": costs,
    }


def bench_sweep(
    sweep_file: Path,
    overrides: tuple[str, ...] = (),
    *,
    address: str | None = None,
    keep: Path | None = None,
    executor: str | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Run the sweep both ways and return ``summarize``'s figures plus Ray's startup time.

    ``address``: join this Ray instead of starting (and stopping) a local one; ``keep``: leave the
    artifacts there instead of a temporary directory that is removed; ``executor``: override the
    file's ``resources.executor``.
    """
    from biollm_platform.sweep import bytecode, runner
    from biollm_platform.sweep.local_ray import RayHandle, connect, shutdown

    root = Path(keep).resolve() if keep else Path(tempfile.mkdtemp(prefix="biollm-bench-sweep-"))
    if keep and root.exists() and any(root.iterdir()):
        raise UserError(f"--keep {root}: directory is not empty")
    try:
        prepared = runner.prepare(sweep_file, overrides, storage=str(root / "ray"), executor=executor)
        executor = getattr(prepared.spec.resources, "executor", "train_workers")
        # Once per install where Python writes no .pyc itself; after the input is validated (it takes ~35 s).
        bytecode.ensure_bytecode(log)  # both halves start with compiled bytecode
        log(f"{len(prepared.trials)} trials; (a) sequential `biollm train` subprocesses")
        sequential = run_sequential(
            prepared.trials, root / "sequential", on_trial=lambda t, s: log(f"  {t}: {s:.1f} s")
        )
        log(f"(b) Ray sweep, executor {executor}")
        started = time.perf_counter()
        handle: RayHandle = connect(address)
        ray_startup_s = time.perf_counter() - started
        try:
            manifest, _ = runner.submit_local(prepared, address=address)
        finally:
            if handle.started_here:
                shutdown(handle)
        ray_s = time.perf_counter() - started
        if manifest.status != "FINISHED":
            errors = [f"{t.trial_id}: {t.error}" for t in manifest.trials if t.state != "TERMINATED"]
            raise RuntimeError(f"the Ray sweep ended {manifest.status}: {'; '.join(errors)}")
        records = json.loads((prepared.sweep_dir / "manifest.json").read_text())["trials"]
        result = summarize(sequential, ray_s, fixed_costs(prepared.sweep_dir, records), max_concurrent(records))
        return {**result, "ray_startup_s": ray_startup_s, "executor": executor, "cpus": os.cpu_count()}
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
