"""Sweeps on a remote Ray cluster, submitted as Ray Jobs.

The job runs `biollm sweep submit` on the head (``--address auto``) with the resolved sweep file; the
code travels as ``py_modules`` (or comes from the docker image's installed package). The remote driver
prints its manifest on a ``BIOLLM_MANIFEST`` line at every trial state change, so `biollm sweep
status` can show trials through the job API alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from biollm_core.errors import UserError

from .local_ray import enable_token_auth_if_available
from .manifest import Manifest, TrialRecord, write_manifest
from .runner import PreparedSweep, is_uri

MANIFEST_PREFIX = "BIOLLM_MANIFEST "
REMOTE_STORAGE = (
    "~/biollm/outputs/sweeps"  # relative storage resolves here on the head, not in the job's temp dir
)
JOB_TO_SWEEP = {
    "PENDING": "SUBMITTED",
    "RUNNING": "RUNNING",
    "STOPPED": "STOPPED",
    "SUCCEEDED": "FINISHED",
    "FAILED": "FAILED",
}
EXCLUDES = ["outputs/", ".venv/", ".git/", "__pycache__/", "*.pyc", "wandb/", ".pytest_cache/"]


def is_remote(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


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
    remote_dir = storage if is_uri(storage) else f"{storage}/{prepared.sweep_id}"
    manifest = Manifest(
        sweep_id=prepared.sweep_id,
        name=spec.name,
        status="SUBMITTED",
        address=address,
        job_id=job_id,
        storage=remote_dir,
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


def publish_line(manifest: Manifest) -> None:
    """Print the manifest (without trial configs) on one line of the job's log."""
    data = manifest.model_dump(mode="json")
    for trial in data["trials"]:
        trial.pop("config", None)
    print(MANIFEST_PREFIX + json.dumps(data, separators=(",", ":")), flush=True)


def remote_status(manifest: Manifest) -> tuple[str, Manifest]:
    """(job status, manifest with the trial states the remote driver last printed)."""
    client = job_client(manifest.address or "")
    try:
        status = str(client.get_job_status(manifest.job_id))
        logs = client.get_job_logs(manifest.job_id)
    except Exception as error:  # noqa: BLE001
        raise UserError(
            f"cannot read job {manifest.job_id} at {manifest.address}: {str(error).splitlines()[0][:200]}"
        ) from None
    lines = [line for line in logs.splitlines() if line.startswith(MANIFEST_PREFIX)]
    if lines:
        remote = json.loads(lines[-1][len(MANIFEST_PREFIX) :])
        states = {t["trial_id"]: t for t in remote["trials"]}
        for trial in manifest.trials:
            if trial.trial_id in states:
                for key in ("state", "started_at", "ended_at", "error", "attempts", "step"):
                    setattr(trial, key, states[trial.trial_id].get(key))
    name = status.split(".")[-1]
    manifest.status = JOB_TO_SWEEP.get(name, manifest.status)  # type: ignore[assignment]
    return status.split(".")[-1], manifest


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
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        time.sleep(2)
    return "TIMEOUT"
