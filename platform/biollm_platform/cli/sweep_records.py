"""`biollm sweep list | status | stop | fetch`: what the sweeps' records say, and acting on them.

States shown are the truth as far as it can be known: a local sweep whose driver is gone shows
INTERRUPTED with the command that resumes it; a remote sweep asks its cluster (when reachable) and
the local record keeps the last answer; a corrupt manifest is one line, and `list` flags it and goes
on with the others.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from biollm_core.errors import UserError

DEFAULT_ROOT = Path("outputs/sweeps")
RootOption = Annotated[Path, typer.Option("--root", help="Directory holding sweep directories.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def find_sweep(sweep_id: str, root: Path) -> Path:
    candidate = Path(sweep_id)
    for path in (candidate, root / sweep_id):
        if (path / "manifest.json").is_file():
            return path.resolve()
    raise UserError(f"no sweep {sweep_id!r} under {root} (see `biollm sweep list`)")


def trials_json(sweep_dir: Path, manifest: Any, note: str | None = None) -> dict[str, Any]:
    base = manifest.storage or manifest.remote_dir or str(sweep_dir)
    here = manifest.fetched_at is not None or not manifest.job_id
    return {
        "sweep_id": manifest.sweep_id,
        "dir": str(sweep_dir),
        "status": manifest.status,
        "note": note,
        "address": manifest.address,
        "job_id": manifest.job_id,
        "job_error": manifest.job_error,
        "remote_dir": manifest.remote_dir,
        "ray_logs": manifest.ray_logs,
        "heartbeat_at": manifest.heartbeat_at,
        "trials": [
            {
                "trial_id": t.trial_id,
                "method": t.method,
                "seed": t.seed,
                "axes": t.axes,
                "state": t.state,
                "out_dir": f"{sweep_dir if here else base}/{t.out_dir}",
                "step": t.step,
                "attempts": t.attempts,
                "error": t.error,
                "failure": t.failure.model_dump() if t.failure else None,
            }
            for t in manifest.trials
        ],
    }


def current(sweep_dir: Path, *, ask_cluster: bool = True) -> tuple[Any, str | None]:
    """The sweep's manifest as it stands now, and a note on it (a gone driver, an unreachable cluster)."""
    from biollm_platform.sweep import remote
    from biollm_platform.sweep.liveness import effective
    from biollm_platform.sweep.manifest import read_manifest

    manifest = read_manifest(sweep_dir)
    if manifest.job_id and remote.is_remote(manifest.address):
        final = manifest.status in ("FINISHED", "FAILED", "STOPPED")
        known = final and (manifest.remote_dir or manifest.job_error)
        if known:
            return manifest, None
        if ask_cluster and remote.reachable(manifest.address):
            _, manifest = remote.refresh(sweep_dir, manifest)
            return manifest, None
        return manifest, f"cluster {manifest.address} unreachable: last known state"
    return effective(manifest)


def list_sweeps(root: RootOption = DEFAULT_ROOT, as_json: JsonOption = False) -> None:
    """The sweeps under --root with their status and trial counts (a corrupt one is flagged)."""
    sweeps = []
    for path in sorted(root.glob("*/manifest.json")) if root.is_dir() else []:
        try:
            manifest, note = current(path.parent)
        except UserError as error:
            sweeps.append({"sweep_id": path.parent.name, "dir": str(path.parent.resolve()), "status": "CORRUPT", "note": str(error)})
            continue
        sweeps.append(
            trials_json(path.parent.resolve(), manifest, note)
            | {"counts": manifest.counts(), "created_at": manifest.created_at}
        )
    if as_json:
        print(json.dumps(sweeps, indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)  # one line per sweep/trial, never folded
    if not sweeps:
        console.print(f"no sweeps under {root}")
    for sweep in sweeps:
        if sweep["status"] == "CORRUPT":
            console.print(f"{sweep['sweep_id']}  CORRUPT     {sweep['note']}", markup=False)
            continue
        counts = " ".join(f"{k.lower()} {v}" for k, v in sweep["counts"].items())
        where = f"job {sweep['job_id']}" if sweep["job_id"] else sweep["dir"]
        note = f"  ({sweep['note']})" if sweep["note"] else ""
        console.print(f"{sweep['sweep_id']}  {sweep['status']:<11} {counts}  {where}{note}", markup=False)


def status(sweep_id: str, root: RootOption = DEFAULT_ROOT, as_json: JsonOption = False) -> None:
    """A sweep's trials: state, step, attempts, output path and each failed trial's cause."""
    from biollm_platform.sweep.report import summary_table

    sweep_dir = find_sweep(sweep_id, root)
    manifest, note = current(sweep_dir)
    data = trials_json(sweep_dir, manifest, note)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)  # one line per sweep/trial, never folded
    console.print(
        f"sweep {manifest.sweep_id}: {manifest.status}  dir {sweep_dir}"
        + (f"  job {manifest.job_id}" if manifest.job_id else ""),
        markup=False,
    )
    if note:
        console.print(note, markup=False)
    if manifest.job_error:
        console.print(f"job error: {manifest.job_error}", markup=False)
    if manifest.job_id and not manifest.fetched_at and manifest.remote_dir:
        fetch_hint = f"`biollm sweep fetch {manifest.sweep_id}` brings them here"
        console.print(f"results on the head in {manifest.remote_dir}; {fetch_hint}", markup=False)
    if manifest.ray_logs:
        console.print(f"Ray logs: {manifest.ray_logs}", markup=False)
    console.print(summary_table(sweep_dir, manifest))
    for trial in data["trials"]:
        if trial["error"]:
            console.print(f"{trial['trial_id']} failed: {trial['error']}", markup=False)


def stop(sweep_id: str, root: RootOption = DEFAULT_ROOT) -> None:
    """Stop a running sweep (its local driver, or its Ray Job); `resume` continues it later."""
    import socket

    from biollm_platform.sweep import remote
    from biollm_platform.sweep.liveness import driver_gone
    from biollm_platform.sweep.manifest import read_manifest, request_stop

    sweep_dir = find_sweep(sweep_id, root)
    manifest = read_manifest(sweep_dir)
    if manifest.job_id and remote.is_remote(manifest.address):
        remote.stop_job(manifest)
    elif not manifest.driver_pid or manifest.status not in ("CREATED", "RUNNING"):
        raise UserError(f"sweep {manifest.sweep_id} has no running driver (status {manifest.status})")
    elif manifest.driver_host and manifest.driver_host != socket.gethostname():
        raise UserError(f"sweep {manifest.sweep_id}'s driver runs on {manifest.driver_host} (pid {manifest.driver_pid}): stop it there")
    request_stop(sweep_dir)  # first: the driver's last write keeps STOPPED
    if not manifest.job_id and driver_gone(manifest) is None:
        try:
            os.kill(manifest.driver_pid, signal.SIGINT)  # Tune stops its trials and saves state on SIGINT
        except ProcessLookupError:
            pass
    Console(highlight=False, soft_wrap=True).print(
        f"sweep {manifest.sweep_id}: stop requested; `biollm sweep resume {manifest.sweep_id}` continues it"
    )


def fetch(
    sweep_id: str,
    root: RootOption = DEFAULT_ROOT,
    checkpoints: Annotated[
        bool, typer.Option("--checkpoints", help="Also bring every trial's checkpoints (large).")
    ] = False,
) -> None:
    """Bring a remote sweep's directory from its head here, through the cluster (Ray Jobs API).

    Trial files, the head's manifest, comparison and Ray's records; not the checkpoints unless asked.
    """
    from biollm_platform.sweep.fetch import fetch as fetch_sweep

    sweep_dir = find_sweep(sweep_id, root)
    manifest = fetch_sweep(sweep_dir, checkpoints=checkpoints)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in manifest.counts().items() if v)
    Console(highlight=False, soft_wrap=True).print(
        f"sweep {manifest.sweep_id}: fetched {manifest.remote_dir} from {manifest.address} into {sweep_dir} "
        f"({counts}); `biollm results aggregate {sweep_dir}` compares it",
        markup=False,
    )
