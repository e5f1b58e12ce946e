"""A real remote path: a second Ray head on loopback, the sweep submitted to it as a Ray Job."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from biollm_platform.sweep.local_ray import DRIVER_RESOURCE
from biollm_platform.sweep.manifest import read_manifest

from .conftest import figures, tiny_sweep_file

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _head_pids(temp_dir: str, gcs_port: int) -> list[int]:
    """Every process of the test head: its command line or an open file names the head's own temp dir.

    (Ray's agents and workers rename themselves, e.g. `ray::DashboardAgent`, so the command line alone
    misses them; their log files under the temp dir give them away. The Ray client server names the GCS.)
    """
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if (
                temp_dir.encode() in cmdline
                or (b"ray.util.client.server" in cmdline and f":{gcs_port}\0".encode() in cmdline)
                or any(os.readlink(fd).startswith(temp_dir) for fd in (proc / "fd").iterdir())
            ):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


@pytest.fixture
def remote_head() -> Iterator[str]:
    """`ray start --head` on 127.0.0.1 with its own ports and temp dir; stopped by its own PIDs.

    (`ray stop` has no address filter: it would also kill the session's Ray.)
    """
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    ports = {
        name: _free_port()
        for name in (
            "port",
            "dashboard-port",
            "node-manager-port",
            "object-manager-port",
            "metrics-export-port",
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "runtime-env-agent-port",
            "ray-client-server-port",
        )
    }
    worker_base = _free_port() // 10 * 10
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        f"--resources={json.dumps({DRIVER_RESOURCE: 64})}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        f"--min-worker-port={worker_base}",
        f"--max-worker-port={worker_base + 60}",
        *(f"--{name}={port}" for name, port in ports.items()),
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    try:
        yield f"http://127.0.0.1:{ports['dashboard-port']}"
    finally:
        _signal_all(_head_pids(temp_dir, ports["port"]), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _head_pids(temp_dir, ports["port"]) and time.monotonic() < deadline:
            time.sleep(0.5)
        _signal_all(_head_pids(temp_dir, ports["port"]), signal.SIGKILL)
        time.sleep(1)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not _head_pids(temp_dir, ports["port"])


def test_submit_to_a_remote_head(remote_head: str, repo_root: Path, tmp_path: Path, reference_run: Path) -> None:
    sweep_file = tiny_sweep_file(repo_root, tmp_path)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "biollm_platform.cli.sweep",
            "submit",
            str(sweep_file),
            "--address",
            remote_head,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted as Ray Job" in result.stdout and "SUCCEEDED" in result.stdout
    (record,) = (tmp_path / "outputs" / "sweeps").iterdir()  # the client's record of the job
    local = read_manifest(record)
    assert local.job_id and local.address == remote_head
    (sweep_dir,) = (tmp_path / "sweeps").iterdir()  # the head wrote where the sweep's absolute storage says
    remote = read_manifest(sweep_dir)
    assert remote.sweep_id == local.sweep_id and remote.status == "FINISHED"
    assert all(t.state == "TERMINATED" for t in remote.trials)
    # the same sweep file gives the same figures anywhere, and reference_run's retried worker changed nothing
    for trial in ("cls-seed7", "nosleep-seed7"):
        assert figures(sweep_dir / trial) == figures(reference_run / trial)
    status = subprocess.run(
        [sys.executable, "-m", "biollm_platform.cli.sweep", "status", local.sweep_id, "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["status"] == "FINISHED" and {t["state"] for t in data["trials"]} == {"TERMINATED"}
    assert time.monotonic() - started < 600
