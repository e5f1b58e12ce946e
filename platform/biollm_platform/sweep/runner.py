"""Submit and resume sweeps on a Ray cluster: one Tune trial per grid cell, the manifest as the record.

Resume does not depend on Tune's experiment snapshot (which lags a killed driver): the manifest plus
each trial's own files decide. A trial with a summary.json is done and never rerun; any other trial is
scheduled again and its worker continues from the trial's last checkpoint, so the figures equal an
uninterrupted run's.
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console

from biollm_core.errors import UserError
from biollm_core.methods.registry import SEED_MODES

from . import ray_internals
from .expand import METHOD_AXIS, SEED_MODE_AXIS, TrialSpec, expand
from .extra_sinks import specs_from_env
from .liveness import Heartbeat, claim_driver, driver_running, release_driver
from .local_ray import RayHandle, connect
from .manifest import Manifest, TrialRecord, clear_stop, manifest_guard, now, read_manifest, write_manifest
from .progress import make_tracker
from .schedule import longest_first
from .schema import Resources, SweepSpec, load_sweep, parse_sweep
from .trial import driver_resources, trial_driver, trial_payload

SUMMARY = "summary.json"


@dataclass(frozen=True)
class PreparedSweep:
    spec: SweepSpec  # the resolved spec (CLI overrides folded in)
    trials: list[TrialSpec]
    sweep_id: str
    sweep_dir: Path  # local directory: sweep.yaml, manifest.json (and trial dirs for path storage)
    trial_root: str  # where trial directories live: sweep_dir, or a URI


def is_uri(location: str) -> bool:
    return "://" in location


def new_sweep_id(name: str) -> str:
    return f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def prepare(
    sweep_file: Path,
    overrides: tuple[str, ...] = (),
    *,
    only: str | None = None,
    max_concurrent: int | None = None,
    storage: str | None = None,
    sweep_id: str | None = None,
    executor: str | None = None,
) -> PreparedSweep:
    """Validate the sweep and expand its grid; touches nothing on disk. Raises UserError on bad input.

    ``only``, ``max_concurrent``, ``storage`` and ``executor`` replace the file's values (the CLI's flags).
    """
    spec = load_sweep(sweep_file)
    updates: dict[str, Any] = {}
    resources = spec.resources
    if executor:  # validated like the file's key: train_local needs one worker per trial
        try:
            resources = Resources.model_validate({**resources.model_dump(), "executor": executor})
        except ValidationError as error:
            reason = error.errors()[0]["msg"].removeprefix("Value error, ")
            raise UserError(f"--executor {executor}: {reason}") from None
    if max_concurrent:
        resources = resources.model_copy(update={"max_concurrent_trials": max_concurrent})
    if resources is not spec.resources:
        updates["resources"] = resources
    if only:
        axis = next((a for a in (METHOD_AXIS, SEED_MODE_AXIS) if a in spec.grid), None)
        values = [SEED_MODES.get(v, v) if axis == SEED_MODE_AXIS else v for v in spec.grid.get(axis, [])]
        if only not in values:
            raise UserError(f"--only {only}: the grid's methods are {', '.join(map(str, values)) or 'not an axis'}")
        grid = {k: v for k, v in spec.grid.items() if k != SEED_MODE_AXIS}
        updates["grid"] = {**grid, METHOD_AXIS: [only]}
    if storage:
        updates["storage"] = storage
    spec = spec.model_copy(update=updates)
    sweep_id = sweep_id or new_sweep_id(spec.name)
    trials = expand(spec, sweep_file, sweep_id, overrides)
    spec = spec.model_copy(
        update={
            "base": spec.base.model_copy(
                update={
                    "overrides": [*spec.base.overrides, *overrides],
                    "files": [str((sweep_file.parent / f).resolve()) for f in spec.base.files],
                }
            )
        }
    )
    if is_uri(spec.storage):
        sweep_dir = Path("outputs/sweeps").resolve() / sweep_id
        trial_root = f"{spec.storage.rstrip('/')}/{sweep_id}"
    else:
        sweep_dir = Path(os.path.expanduser(spec.storage)).resolve() / sweep_id
        trial_root = str(sweep_dir)
    return PreparedSweep(spec, trials, sweep_id, sweep_dir, trial_root)


def check_storage(prepared: PreparedSweep) -> None:
    """Fail before Ray starts when the sweep directory cannot be created where `storage` says."""
    if is_uri(prepared.trial_root):
        return
    storage = prepared.sweep_dir.parent
    if prepared.sweep_dir.exists():
        raise UserError(f"{prepared.sweep_dir} already exists")
    existing = next(p for p in (storage, *storage.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"storage {storage}: {existing} is a file, not a directory (--storage or the file's `storage`)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"storage {storage}: {existing} is not writable (--storage or the file's `storage`)")


def create_sweep_dir(prepared: PreparedSweep, address: str | None) -> Manifest:
    """Write sweep.yaml and a manifest of PENDING trials (only after every check passed)."""
    sweep_dir = prepared.sweep_dir
    check_storage(prepared)
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "sweep.yaml").write_text(
        yaml.safe_dump(prepared.spec.model_dump(mode="json"), sort_keys=False)
    )
    manifest = Manifest(
        sweep_id=prepared.sweep_id,
        name=prepared.spec.name,
        address=address,
        storage=None if prepared.trial_root == str(sweep_dir) else prepared.trial_root,
        trials=[
            TrialRecord(
                trial_id=t.trial_id, method=t.method, seed=t.seed, axes=t.axes, out_dir=t.out_dir, config=t.config
            )
            for t in prepared.trials
        ],
    )
    claim_driver(manifest)  # from now on a dead driver shows as INTERRUPTED, not CREATED forever
    write_manifest(sweep_dir, manifest)
    (sweep_dir / "trials.yaml").write_text(
        yaml.safe_dump([t.to_dict() for t in prepared.trials], sort_keys=False)
    )
    return manifest


def check_feasible(spec: SweepSpec) -> None:
    """Fail fast when no node (alive, or one the autoscaler may launch) can host a worker or a driver."""
    import ray

    need = {"CPU": spec.resources.cpus_per_worker, "GPU": spec.resources.gpus_per_worker}
    shapes = [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]
    shapes += ray_internals.autoscaler_node_shapes()
    totals = ray.cluster_resources()
    if not any(all(shape.get(k, 0) >= v for k, v in need.items() if v) for shape in shapes):
        have = ", ".join(f"{k} {totals.get(k, 0):g}" for k in need)
        raise UserError(
            f"infeasible resources: each worker asks for CPU {need['CPU']:g}, GPU {need['GPU']:g} "
            "but no node of the "
            f"cluster has that (cluster total: {have}); lower resources.cpus_per_worker / "
            "resources.gpus_per_worker "
            "or submit to a cluster with such nodes"
        )


def concurrency(spec: SweepSpec, pending: int) -> int:
    """Trials at once: the file's limit, else as many as the cluster's CPUs and GPUs fit."""
    import ray

    if spec.resources.max_concurrent_trials:
        return min(spec.resources.max_concurrent_trials, pending)
    totals = ray.cluster_resources()
    per_trial = {"CPU": spec.resources.cpus_per_worker, "GPU": spec.resources.gpus_per_worker}
    fit = min(
        math.floor(totals.get(k, 0) / (v * spec.resources.workers_per_trial) + 1e-9)
        for k, v in per_trial.items()
        if v
    )
    return max(1, min(fit, pending))


def reconcile(sweep_dir: Path, manifest: Manifest) -> Manifest:
    """Trials whose summary.json exists are TERMINATED, whatever the last driver managed to record."""
    for record in manifest.trials:
        if record.state != "TERMINATED" and (sweep_dir / record.out_dir / SUMMARY).is_file():
            record.state, record.error, record.failure = "TERMINATED", None, None
            record.ended_at = record.ended_at or now()
        elif record.state == "RUNNING":
            record.state = "PENDING"
    write_manifest(sweep_dir, manifest)
    return manifest


def run_trials(
    sweep_dir: Path,
    spec: SweepSpec,
    manifest: Manifest,
    trial_root: str,
    *,
    console: Console | None,
    publish: Any = None,
) -> Manifest:
    """Run the manifest's unfinished trials as one Tune experiment; returns the updated manifest."""
    from ray import tune

    trials = {
        t["trial_id"]: TrialSpec.from_dict(t) for t in yaml.safe_load((sweep_dir / "trials.yaml").read_text())
    }
    todo = [t.trial_id for t in longest_first([trials[r.trial_id] for r in manifest.trials if r.state != "TERMINATED"])]
    if not todo:
        return manifest
    check_feasible(spec)
    uri = is_uri(trial_root)
    extra_sinks = specs_from_env()
    payloads = [
        trial_payload(
            spec,
            trials[trial_id],
            sweep_id=manifest.sweep_id,
            trial_dir=f"{trial_root}/{trial_id}",
            trial_uri=f"{trial_root}/{trial_id}" if uri else None,
            ray_storage=f"{trial_root}/_ray",
            extra_sinks=extra_sinks,
        )
        for trial_id in todo
    ]
    for trial_id in todo:
        manifest.trial(trial_id).error = manifest.trial(trial_id).failure = None
    manifest.status = "RUNNING"
    claim_driver(manifest)
    write_manifest(sweep_dir, manifest)

    def name_of(trial: Any) -> str:
        return trial.config["trial"]["trial"]["trial_id"]

    tuner = tune.Tuner(
        tune.with_resources(trial_driver, driver_resources(spec)),
        param_space={"trial": tune.grid_search(payloads)},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=concurrency(spec, len(todo)),
            # A finished trial's actor (a Python process with Ray Train, and for train_local torch and the
            # engine, imported) runs the next trial instead of a fresh process: ~2 s less per trial here.
            reuse_actors=True,
            trial_name_creator=name_of,
            trial_dirname_creator=name_of,
        ),
        run_config=tune.RunConfig(
            name=f"tune-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}",
            storage_path=f"{trial_root}/_ray",
            verbose=0,
            # train_workers: worker failures are retried inside Train; train_local: the trial is the worker
            failure_config=tune.FailureConfig(
                max_failures=spec.retries if spec.resources.executor == "train_local" else 0
            ),
            callbacks=[tracker := make_tracker(sweep_dir, manifest, console, publish)],
        ),
    )
    with tracker, Heartbeat(lambda: _beat(sweep_dir, manifest)):
        tuner.fit()
    with manifest_guard:
        reconcile(sweep_dir, manifest)
        states = {r.state for r in manifest.trials}
        manifest.status = (
            "FINISHED" if states == {"TERMINATED"} else "FAILED" if "ERROR" in states else "INTERRUPTED"
        )  # INTERRUPTED becomes STOPPED when `sweep stop` asked for it (write_manifest keeps the request)
        release_driver(manifest)
        write_manifest(sweep_dir, manifest)
    return manifest


def _beat(sweep_dir: Path, manifest: Manifest) -> None:
    with manifest_guard:
        manifest.heartbeat_at = now()
        write_manifest(sweep_dir, manifest)


def submit_local(
    prepared: PreparedSweep,
    *,
    address: str | None,
    verbose: bool = False,
    console: Console | None = None,
    publish: Any = None,
    job_id: str | None = None,
) -> tuple[Manifest, RayHandle]:
    """Connect (or start) Ray, create the sweep directory and run every trial."""
    check_storage(prepared)  # before Ray starts: a bad --storage costs nothing
    handle = connect(address, verbose=verbose)
    check_feasible(prepared.spec)
    manifest = create_sweep_dir(prepared, handle.address)
    manifest.ray_logs = handle.logs_dir
    if job_id:
        manifest.job_id = job_id
    if console:
        console.print(f"sweep [bold]{prepared.sweep_id}[/]  dir {prepared.sweep_dir}")
        if handle.dashboard_url:
            console.print(f"Ray dashboard: {handle.dashboard_url}")
        if handle.logs_dir:
            kept = " (kept after the sweep)" if handle.started_here else ""
            console.print(f"Ray logs: {handle.logs_dir}{kept}")
    return run_trials(
        prepared.sweep_dir, prepared.spec, manifest, prepared.trial_root, console=console, publish=publish
    ), handle


def resume(
    sweep_dir: Path, *, address: str | None, verbose: bool = False, console: Console | None = None
) -> Manifest:
    """Finish an interrupted sweep: done trials stay, others continue from their checkpoints."""
    manifest = read_manifest(sweep_dir)
    if manifest.job_id:
        raise UserError(f"{manifest.sweep_id} ran as Ray Job {manifest.job_id}; resume it on its cluster")
    if driver_running(manifest):
        raise UserError(
            f"sweep {manifest.sweep_id} is still running (driver pid {manifest.driver_pid} on "
            f"{manifest.driver_host}); `biollm sweep stop {manifest.sweep_id}` first"
        )
    clear_stop(sweep_dir, manifest)
    manifest = reconcile(sweep_dir, manifest)
    spec = parse_sweep((sweep_dir / "sweep.yaml").read_text(), str(sweep_dir / "sweep.yaml"))
    for record in manifest.trials:
        if record.state == "ERROR":
            record.state = "PENDING"  # errored trials rerun (from their checkpoints when they have some)
    handle = connect(address, verbose=verbose)
    manifest.ray_logs = handle.logs_dir
    if console and handle.logs_dir:
        console.print(f"Ray logs: {handle.logs_dir}")
    trial_root = manifest.storage or str(sweep_dir)
    return run_trials(sweep_dir, spec, manifest, trial_root, console=console)
