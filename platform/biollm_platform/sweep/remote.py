"""Sweeps on a remote Ray cluster, submitted as Ray Jobs.

The job runs `biollm sweep submit` on the head (``--address auto``) with the resolved sweep file; the
code travels as ``py_modules`` (or comes from the docker image's installed package). The remote driver
prints its manifest, with its sweep directory on the head, on a ``BIOLLM_MANIFEST`` line at every
trial state change, so `biollm sweep status` can show trials through the job API alone. The local
record (``outputs/sweeps/<id>/manifest.json``) learns the head's absolute directory, the final state
and a failed job's error line whenever the client asks the cluster (``refresh``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from biollm_core.errors import UserError

from .local_ray import enable_token_auth_if_available
from .manifest import Manifest, TrialRecord, manifest_lock, write_manifest
from .runner import PreparedSweep, is_uri

MANIFEST_PREFIX = "BIOLLM_MANIFEST "
REMOTE_STORAGE = "~/biollm/outputs/sweeps"  # relative storage resolves here, in the head's home
JOB_TO_SWEEP = {
    "PENDING": "SUBMITTED",
    "RUNNING": "RUNNING",
    "STOPPED": "STOPPED",
    "SUCCEEDED": "FINISHED",
    "FAILED": "FAILED",
}
FINAL_JOB_STATES = ("SUCCEEDED", "FAILED", "STOPPED")
EXCLUDES = ["outputs/", ".venv/", ".git/", "__pycache__/", "*.pyc", "wandb/", ".pytest_cache/"]
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception):\s*\S")


def is_remote(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


def reachable(address: str, timeout_s: float = 2.0) -> bool:
    """Does anything accept connections at the dashboard's host and port (a quick check, no HTTP)?"""
    parsed = urlparse(address)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def job_client(address: str) -> Any:
    """A JobSubmissionClient for ``address``; UserError (one line) when it cannot be reached."""
    enable_token_auth_if_available()
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as error:  # noqa: BLE001 - requests/aiohttp/RuntimeError variants all mean "cannot reach"
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot reach the Ray cluster at {address}: {detail[:200]}") from None


def _code_modules() -> list[str]:
    """The two packages of this checkout, shipped as py_modules (the image's copy is used otherwise)."""
    import biollm_core
    import biollm_platform

    return [str(Path(biollm_core.__file__).parent), str(Path(biollm_platform.__file__).parent)]


def submit_job(
    prepared: PreparedSweep, address: str, *, ship_code: bool = True, verbose: bool = False
) -> tuple[str, Path]:
    """Submit the sweep as a Ray Job; writes a local record of it and returns (job id, local dir)."""
    client = job_client(address)
    spec = prepared.spec
    storage = spec.storage if is_uri(spec.storage) or os.path.isabs(spec.storage) else REMOTE_STORAGE
    staging = Path(tempfile.mkdtemp(prefix="biollm-job-"))
    try:
        files = []
        for index, source in enumerate(spec.base.files):
            target = f"files/{index}-{Path(source).name}"
            (staging / "files").mkdir(exist_ok=True)
            shutil.copy(source, staging / target)
            files.append(target)
        resolved = spec.model_copy(
            update={"storage": storage, "base": spec.base.model_copy(update={"files": files})}
        )
        (staging / "sweep.yaml").write_text(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False))
        runtime_env: dict[str, Any] = {
            "working_dir": str(staging),
            "env_vars": {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "PYTHONUNBUFFERED": "1"},
            "excludes": EXCLUDES,
        }
        if ship_code:
            runtime_env["py_modules"] = _code_modules()
        entrypoint = (
            f"python -m biollm_platform.cli.sweep submit sweep.yaml --address auto"
            f" --sweep-id {prepared.sweep_id}"
            f" --remote-job{' --verbose' if verbose else ''}"
        )
        try:
            job_id = client.submit_job(
                entrypoint=entrypoint, runtime_env=runtime_env, submission_id=f"biollm-{prepared.sweep_id}"
            )
        except Exception as error:  # noqa: BLE001
            raise UserError(
                f"the Ray cluster at {address} refused the job: {str(error).splitlines()[0][:300]}"
            ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = Manifest(
        sweep_id=prepared.sweep_id,
        name=spec.name,
        status="SUBMITTED",
        address=address,
        job_id=job_id,
        # A URI is the same place everywhere; a path on the head becomes known (absolute, `~` expanded
        # there) once the remote driver reports it
        storage=storage if is_uri(storage) else None,
        remote_dir=f"{storage.rstrip('/')}/{prepared.sweep_id}" if is_uri(storage) or os.path.isabs(storage) else None,
        trials=[
            TrialRecord(
                trial_id=t.trial_id, method=t.method, seed=t.seed, axes=t.axes, out_dir=t.out_dir, config=t.config
            )
            for t in prepared.trials
        ],
    )
    local_dir = Path("outputs/sweeps").resolve() / prepared.sweep_id
    local_dir.mkdir(parents=True, exist_ok=True)
    (local_dir / "sweep.yaml").write_text(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False))
    write_manifest(local_dir, manifest)
    return job_id, local_dir


def publish_line(manifest: Manifest, sweep_dir: Path | None = None) -> None:
    """Print the manifest (without trial configs) and the sweep's directory on one line of the job's log."""
    data = manifest.model_dump(mode="json")
    for trial in data["trials"]:
        trial.pop("config", None)
    if sweep_dir is not None:
        data["sweep_dir"] = str(sweep_dir)
    print(MANIFEST_PREFIX + json.dumps(data, separators=(",", ":")), flush=True)


def error_line(logs: str, message: str | None) -> str | None:
    """A failed job's cause in one line: the last `error:` line of its log, else its last exception
    line, else the first line of Ray's job message."""
    lines = [line.strip() for line in logs.splitlines() if line.strip() and not line.startswith(MANIFEST_PREFIX)]
    for pattern in (lambda line: line.startswith("error:"), _EXCEPTION_LINE.match):
        found = [line for line in lines if pattern(line)]
        if found:
            return found[-1][:500]
    first = (message or "").strip().splitlines()
    return first[0][:500] if first else None


def _apply_remote(manifest: Manifest, remote: dict[str, Any]) -> None:
    states = {t["trial_id"]: t for t in remote.get("trials", [])}
    for trial in manifest.trials:
        if trial.trial_id in states:
            for key in ("state", "started_at", "ended_at", "error", "failure", "attempts", "step"):
                if key in states[trial.trial_id]:
                    setattr(trial, key, states[trial.trial_id][key])
    if remote.get("sweep_dir"):
        manifest.remote_dir = remote["sweep_dir"]
    if remote.get("ray_logs"):
        manifest.ray_logs = remote["ray_logs"]


def refresh(local_dir: Path, manifest: Manifest) -> tuple[str, Manifest]:
    """Ask the cluster about the job; update the local record (trial states, the head's directory, the
    final state, a failed job's error line) and return (job status, manifest)."""
    client = job_client(manifest.address or "")
    try:
        info = client.get_job_info(manifest.job_id)
        logs = client.get_job_logs(manifest.job_id)
    except Exception as error:  # noqa: BLE001
        raise UserError(
            f"cannot read job {manifest.job_id} at {manifest.address}: {str(error).splitlines()[0][:200]}"
        ) from None
    status = str(info.status).split(".")[-1]
    lines = [line for line in logs.splitlines() if line.startswith(MANIFEST_PREFIX)]
    with manifest_lock(local_dir):
        if lines:
            _apply_remote(manifest, json.loads(lines[-1][len(MANIFEST_PREFIX) :]))
        manifest.status = JOB_TO_SWEEP.get(status, manifest.status)  # type: ignore[assignment]
        manifest.job_error = error_line(logs, info.message) if status == "FAILED" else None
        write_manifest(local_dir, manifest)
    return status, manifest


def stop_job(manifest: Manifest) -> None:
    client = job_client(manifest.address or "")
    client.stop_job(manifest.job_id)


def wait_for_job(address: str, job_id: str, timeout_s: float) -> str:
    """Block until the job ends; returns its final status name."""
    import time

    client = job_client(address)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = str(client.get_job_status(job_id)).split(".")[-1]
        if status in FINAL_JOB_STATES:
            return status
        time.sleep(2)
    return "TIMEOUT"
