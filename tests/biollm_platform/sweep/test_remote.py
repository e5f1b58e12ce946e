"""A real remote path: a stock `ray start --head` on loopback (token auth, no custom resource).

One head for the module: a sweep submitted to it as a Ray Job (relative storage: it lands in the
head's home), its results fetched home through the cluster, and a job that fails with its error line
shown locally. The job's driver is `biollm sweep submit --address auto` run on the head with the
RAY_ADDRESS Ray gives it: what a shell on the head does, so that path is the job's.
"""

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
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.app import app as biollm
from biollm_platform.sweep.local_ray import secure_token_file, token_path
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


PORTS = (
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


@dataclass(frozen=True)
class Head:
    dashboard: str  # http://127.0.0.1:PORT, where Ray Jobs go
    gcs: str  # 127.0.0.1:PORT, what RAY_ADDRESS holds in the head's shell
    home: Path  # the head's $HOME: `~` on the head


@pytest.fixture(scope="module")
def remote_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """Stock `ray start --head` on 127.0.0.1 with its own ports, temp dir and home; stopped by its PIDs.

    Nothing BioLLM-specific: no custom resource. Token auth on, with the client's token. (`ray stop`
    has no address filter: it would also kill the session's Ray.)
    """
    secure_token_file()  # the token client and head share (`ray get-auth-token --generate` on a clean machine)
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    home = tmp_path_factory.mktemp("head-home")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(home),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_path()),  # the client's token: they must match
    }
    env.pop("RAY_ADDRESS", None)
    ports: dict[str, int] = {}
    try:
        for attempt in (1, 2):  # free ports are only free when looked at: another process may take one
            ports = {name: _free_port() for name in PORTS}
            worker_base = _free_port() // 10 * 10
            command = [
                str(Path(sys.executable).parent / "ray"),
                "start",
                "--head",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=2",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--temp-dir={temp_dir}",
                "--disable-usage-stats",
                f"--min-worker-port={worker_base}",
                f"--max-worker-port={worker_base + 60}",
                *(f"--{name}={port}" for name, port in ports.items()),
            ]
            started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            if started.returncode == 0:
                break
            _stop_head(temp_dir, ports["port"])
            assert attempt == 1, f"`ray start --head` failed twice:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}"
        yield Head(f"http://127.0.0.1:{ports['dashboard-port']}", f"127.0.0.1:{ports['port']}", home)
    finally:
        _stop_head(temp_dir, ports.get("port", 0))
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not _head_pids(temp_dir, ports.get("port", 0))


def _stop_head(temp_dir: str, gcs_port: int) -> None:
    _signal_all(_head_pids(temp_dir, gcs_port), signal.SIGTERM)
    deadline = time.monotonic() + 3  # some of the head's processes ignore SIGTERM: waiting longer only waits
    while _head_pids(temp_dir, gcs_port) and time.monotonic() < deadline:
        time.sleep(0.5)
    _signal_all(_head_pids(temp_dir, gcs_port), signal.SIGKILL)
    time.sleep(1)


def _biollm(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(biollm, list(args))
    return result.exit_code, result.output


def test_job_on_a_stock_head_then_fetch_home(
    remote_head: Head, repo_root: Path, tmp_path: Path, reference_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_file = tiny_sweep_file(repo_root, tmp_path, storage="outputs/sweeps")  # relative: the head's home
    monkeypatch.chdir(tmp_path)
    code, out = _biollm("sweep", "submit", str(sweep_file), "--address", remote_head.dashboard)
    assert code == 0, out
    assert "submitted as Ray Job" in out and "SUCCEEDED" in out
    (record,) = (tmp_path / "outputs" / "sweeps").iterdir()  # the client's record of the job
    local = read_manifest(record)
    head_dir = remote_head.home / "biollm" / "outputs" / "sweeps" / local.sweep_id
    assert local.job_id and local.address == remote_head.dashboard and local.status == "FINISHED"
    assert local.remote_dir == str(head_dir) and "~" not in (record / "manifest.json").read_text()
    assert f"results on the head in {head_dir}" in out
    remote = read_manifest(head_dir)
    assert remote.status == "FINISHED" and all(t.state == "TERMINATED" for t in remote.trials)
    assert remote.address == remote_head.gcs  # `--address auto` on the head joined it by RAY_ADDRESS
    # the same sweep file gives the same figures anywhere, and reference_run's retried worker changed nothing
    for trial in ("cls-seed7", "nosleep-seed7"):
        assert figures(head_dir / trial) == figures(reference_run / trial)

    code, out = _biollm("sweep", "list", "--json")
    assert code == 0 and json.loads(out)[0]["status"] == "FINISHED"
    code, out = _biollm("results", "aggregate", local.sweep_id)  # nothing here yet: says where they are
    assert code == 2 and "its results are in" in out and f"biollm sweep fetch {local.sweep_id}" in out

    code, out = _biollm("sweep", "fetch", local.sweep_id)
    assert code == 0, out
    for trial in ("cls-seed7", "nosleep-seed7"):
        assert figures(record / trial) == figures(head_dir / trial)
        assert (record / trial / "metrics.jsonl").read_bytes() == (head_dir / trial / "metrics.jsonl").read_bytes()
        assert not (record / trial / "checkpoints").exists() and (head_dir / trial / "checkpoints").is_dir()
    fetched = read_manifest(record)
    assert fetched.address == remote_head.dashboard and fetched.fetched_at and fetched.storage is None
    code, out = _biollm("results", "aggregate", local.sweep_id)
    assert code == 0, out
    code, out = _biollm("sweep", "status", local.sweep_id, "--json")
    assert code == 0 and {t["state"] for t in json.loads(out)["trials"]} == {"TERMINATED"}

    code, out = _biollm("sweep", "fetch", local.sweep_id, "--checkpoints")
    assert code == 0, out
    (kept,) = sorted((head_dir / "cls-seed7" / "checkpoints").glob("step-*"))[-1:]
    assert (record / "cls-seed7" / "checkpoints" / kept.name / "state.pt").read_bytes() == (kept / "state.pt").read_bytes()


def test_failed_job_shows_its_error_line(remote_head: Head, repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    sweep_file = tiny_sweep_file(repo_root, tmp_path, storage=str(not_a_dir))  # fails on the head, at once
    expected = f"error: storage {not_a_dir}: {not_a_dir} is a file, not a directory"
    monkeypatch.chdir(tmp_path)
    code, out = _biollm("sweep", "submit", str(sweep_file), "--address", remote_head.dashboard)
    assert code == 1
    (line,) = [line for line in out.splitlines() if ": FAILED" in line]  # the waiting command says why
    assert line.startswith("job biollm-") and f": FAILED: {expected}" in line
    # submitted without waiting: `list` and `status` ask the cluster and record what it says
    code, out = _biollm("sweep", "submit", str(sweep_file), "--address", remote_head.dashboard, "--no-wait")
    assert code == 0, out
    (record,) = [p for p in (tmp_path / "outputs" / "sweeps").iterdir() if read_manifest(p).status == "SUBMITTED"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "FAILED" not in (listed := _biollm("sweep", "list")[1]).split(record.name)[1].split("\n")[0]:
        time.sleep(1)
    assert "SUBMITTED" not in listed and listed.count("FAILED") == 2
    assert read_manifest(record).status == "FAILED" and read_manifest(record).job_error.startswith(expected)  # recorded
    code, out = _biollm("sweep", "status", record.name)
    assert code == 0 and f"job error: {expected}" in out and "FAILED" in out
