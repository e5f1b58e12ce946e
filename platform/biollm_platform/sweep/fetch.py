"""`biollm sweep fetch`: bring a remote sweep's directory home through the cluster's Ray Jobs API.

A remote sweep's results stay on the head (``~/biollm/outputs/sweeps/<id>/`` by default). Fetch runs
``fetch_job.py`` there as a Ray Job: it streams the directory as a tar.gz in base64 lines of the job's
log, which the client reads as they come (``tail_job_logs``), checks (size and sha256) and unpacks
into the local record's directory. The head's manifest then becomes the local one (keeping the
job's address), so `results aggregate <id>` works here. Trial checkpoints stay on the head unless
asked for. Only the dashboard port is needed (what `ray dashboard cluster.yaml` forwards).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shlex
import shutil
import tarfile
import tempfile
from pathlib import Path

from biollm_core.errors import UserError

from . import fetch_job
from .manifest import MANIFEST, Manifest, manifest_lock, now, read_manifest, write_manifest
from .remote import job_client, refresh

STAGING = ".fetch-staging"


def remote_results_hint(sweep_dir: Path) -> str | None:
    """Where a remote sweep's results are, when this directory is only its local record (else None)."""
    try:
        manifest = read_manifest(sweep_dir)
    except UserError:
        return None
    if not manifest.job_id or not manifest.address or not manifest.address.startswith("http"):
        return None
    if any((sweep_dir / t.out_dir / "summary.json").is_file() for t in manifest.trials):
        return None
    where = manifest.remote_dir or "its storage on the head (not reported yet)"
    return (
        f"sweep {manifest.sweep_id} ran as Ray Job {manifest.job_id} on {manifest.address}; its results are "
        f"in {where}, not here: `biollm sweep fetch {manifest.sweep_id}` brings them to {sweep_dir}"
    )


async def _stream(client, job_id: str, archive: Path) -> bool:  # type: ignore[no-untyped-def]
    """Write the job's base64 lines into ``archive`` as they come; True when size and sha256 match the
    job's last line."""
    pending, claimed, size, digest = "", None, 0, hashlib.sha256()
    with archive.open("wb") as out:
        async for text in client.tail_job_logs(job_id):
            pending += text
            *lines, pending = pending.split("\n")
            for line in lines:
                if line.startswith(fetch_job.PREFIX):
                    chunk = base64.b64decode(line[len(fetch_job.PREFIX) :])
                    out.write(chunk)
                    size += len(chunk)
                    digest.update(chunk)
                elif line.startswith(fetch_job.END):
                    claimed = tuple(line[len(fetch_job.END) :].split())
    return claimed == (str(size), digest.hexdigest())


def _run_fetch_job(address: str, remote_dir: str, archive: Path, checkpoints: bool) -> None:
    client = job_client(address)
    script_dir = Path(tempfile.mkdtemp(prefix="biollm-fetch-"))
    try:
        shutil.copy(fetch_job.__file__, script_dir / "fetch_job.py")
        job_id = client.submit_job(
            entrypoint=f"python fetch_job.py {shlex.quote(remote_dir)}{' --checkpoints' if checkpoints else ''}",
            runtime_env={"working_dir": str(script_dir), "env_vars": {"PYTHONUNBUFFERED": "1"}},
        )
    except Exception as error:  # noqa: BLE001
        raise UserError(f"the Ray cluster at {address} refused the fetch job: {str(error).splitlines()[0][:300]}") from None
    finally:
        shutil.rmtree(script_dir, ignore_errors=True)
    complete = asyncio.run(_stream(client, job_id, archive))
    status = str(client.get_job_status(job_id)).split(".")[-1]
    if status != "SUCCEEDED":
        from .remote import error_line

        info = client.get_job_info(job_id)
        raise UserError(f"fetch job {job_id} {status}: {error_line(client.get_job_logs(job_id), info.message)}")
    if not complete:
        raise UserError(f"fetch job {job_id}: the archive arrived incomplete; run `biollm sweep fetch` again")


def _unpack(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):  # no absolute paths, no `..`, no links out (Python >= 3.11.4)
            tar.extractall(into, filter="data")
        else:
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts or member.issym() or member.islnk():
                    raise UserError(f"fetched archive holds an unsafe path: {member.name}")
            tar.extractall(into)  # noqa: S202 - members checked above


def fetch(local_dir: Path, *, checkpoints: bool = False) -> Manifest:
    """Fetch the remote sweep recorded in ``local_dir`` into it; returns the merged local manifest."""
    record = read_manifest(local_dir)
    if not record.job_id or not record.address or not record.address.startswith("http"):
        raise UserError(f"sweep {record.sweep_id} ran here (not as a Ray Job): its results are already in {local_dir}")
    if record.storage:
        raise UserError(
            f"sweep {record.sweep_id} stores its trials in {record.storage}: copy them from there "
            "(e.g. `aws s3 sync`), they are not on the head"
        )
    if record.remote_dir is None:
        _, record = refresh(local_dir, record)
    if record.remote_dir is None:
        detail = f": {record.job_error}" if record.job_error else ""
        raise UserError(f"job {record.job_id} never reported its sweep directory (status {record.status}{detail})")
    staging = local_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        archive = staging / "sweep.tar.gz"
        _run_fetch_job(record.address, record.remote_dir, archive, checkpoints)
        unpacked = staging / "sweep"
        _unpack(archive, unpacked)
        fetched = read_manifest(unpacked)
        for entry in unpacked.iterdir():
            if entry.name == MANIFEST:
                continue
            target = local_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            shutil.move(str(entry), target)
        with manifest_lock(local_dir):
            merged = fetched.model_copy(
                update={
                    "address": record.address,
                    "job_id": record.job_id,
                    "job_error": record.job_error,
                    "remote_dir": record.remote_dir,
                    "storage": None,
                    "fetched_at": now(),
                }
            )
            write_manifest(local_dir, merged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return merged
