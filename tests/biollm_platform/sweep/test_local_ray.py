"""Starting and joining Ray: addresses as Ray's CLI reads them, bounded joins, a loopback-only local
Ray with a private token file, and --keep-ray."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from biollm_core.errors import UserError
from biollm_platform.sweep import local_ray

from .conftest import tiny_sweep_file

LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1", "::1")


def _cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "biollm_platform.cli.sweep", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("ray://head:10001", "Ray Client addresses are not supported"),
        ("head", "expected host:port, auto, or http(s)://host:port"),
    ],
)
def test_addresses_a_sweep_cannot_join(address: str, expected: str) -> None:
    with pytest.raises(UserError, match=re.escape(expected)):
        local_ray._gcs_target(address)


def test_ray_address_of_a_dead_gcs_is_one_line_within_the_bound(repo_root: Path, tmp_path: Path) -> None:
    """RAY_ADDRESS=host:port joins, as `ray` itself does; nobody there: one line, exit 2, no sweep dir."""
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1", "BIOLLM_RAY_CONNECT_TIMEOUT_S": "5"}
    started = time.monotonic()
    result = _cli(["submit", str(repo_root / "sweeps" / "toy_smoke.yaml"), "--storage", str(tmp_path / "s")], env, tmp_path)
    assert time.monotonic() - started < 20
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: cannot connect to Ray at 127.0.0.1:1: connection refused "
        "(is a Ray head running there? `ray status --address 127.0.0.1:1` checks)"
    )
    assert not (tmp_path / "s").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_port_that_is_no_gcs_gives_up_within_the_timeout(repo_root: Path, tmp_path: Path) -> None:
    """Something answers TCP but is no Ray: Ray's own retries (20 x 35 s) are bounded by the timeout."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        port = server.getsockname()[1]
        env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}", "BIOLLM_RAY_CONNECT_TIMEOUT_S": "12"}
        for name in [n for n in env if n.startswith(("RAY_gcs", "RAY_py_gcs"))]:
            env.pop(name)
        started = time.monotonic()
        result = _cli(["submit", str(repo_root / "sweeps" / "toy_smoke.yaml"), "--storage", str(tmp_path / "s")], env, tmp_path)
        elapsed = time.monotonic() - started
    assert result.returncode == 2 and elapsed < 12 + 5, (elapsed, result.stderr)  # + Python and Ray's import
    expected = f"error: cannot connect to Ray at 127.0.0.1:{port}: Failed to connect to Ray cluster at 127.0.0.1:{port}"
    assert result.stderr.strip() == expected
    assert not (tmp_path / "s").exists()


def test_ray_address_of_a_dashboard_submits_a_job(repo_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "RAY_ADDRESS": "http://127.0.0.1:9"}
    result = _cli(["submit", str(repo_root / "sweeps" / "toy_smoke.yaml")], env, tmp_path)
    assert result.returncode == 2 and "cannot reach the Ray cluster at http://127.0.0.1:9" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_token_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = tmp_path / "new" / "auth_token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(made))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    local_ray.secure_token_file()
    assert stat.S_IMODE(made.stat().st_mode) == 0o600 and re.fullmatch(r"[0-9a-f]{64}", made.read_text())
    existing = tmp_path / "auth_token"
    existing.write_text("t" * 64)
    existing.chmod(0o644)  # as Ray writes it
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(existing))
    local_ray.secure_token_file()
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600 and existing.read_text() == "t" * 64


def _psutil():  # noqa: ANN202
    """The psutil that Ray vendors (on sys.path once Ray is imported)."""
    import importlib

    import ray  # noqa: F401

    return importlib.import_module("psutil")


def _listening(pids: list[int]) -> list[tuple[int, str, str, int]]:
    psutil = _psutil()
    found = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            found += [
                (pid, process.name(), c.laddr.ip, c.laddr.port)
                for c in process.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN
            ]
        except psutil.Error:
            continue
    return found


def _tree(pid: int) -> list[int]:
    return [pid, *(child.pid for child in _psutil().Process(pid).children(recursive=True))]


@pytest.mark.ray
def test_workers_run_in_this_environment_even_under_uv_run(ray_cluster: str) -> None:
    """The session's Ray was started by a process that imported Ray first (test collection), under
    `uv run pytest`: its workers still use this interpreter and its compiled environment, not a copy of
    the working directory with a fresh, uncompiled virtual environment (ray_internals)."""
    import ray

    assert not {"working_dir", "py_executable"} & set(ray.get_runtime_context().runtime_env)
    where = ray.get(ray.remote(num_cpus=0)(lambda: (sys.executable, sys.prefix)).remote())
    assert where == (sys.executable, sys.prefix)


@pytest.mark.ray
@pytest.mark.slow
def test_local_sweep_ray_is_loopback_only_and_keep_ray_keeps_it(ray_cluster: str, repo_root: Path, tmp_path: Path) -> None:
    """A sweep's own local Ray: started even where `ray start` left a cluster to join, every listening
    socket of every process it started is on 127.0.0.1, the token file is 600, and --keep-ray keeps the
    dashboard up until Ctrl-C."""
    home = tmp_path / "home"  # a fresh ~/.ray/auth_token is made for this Ray
    home.mkdir()
    ray_tmp = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(ray_cluster)  # what `ray start` leaves behind
    sweep_file = tiny_sweep_file(repo_root, tmp_path, resources={"executor": "train_local"})
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token", "COLUMNS": "400", "RAY_TMPDIR": str(ray_tmp)}
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        env.pop(name, None)
    driver = subprocess.Popen(
        [sys.executable, "-m", "biollm_platform.cli.sweep", "submit", str(sweep_file), "--only", "cls", "--keep-ray"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: list[str] = []
    try:
        for line in driver.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("Ray stays up"):
                break
        out = "".join(lines)
        assert "Ray stays up (--keep-ray)" in out, out
        url = re.search(r"dashboard (http://\S+),", lines[-1])[1]  # type: ignore[index]
        logs = re.search(r"logs (\S+);", lines[-1])[1]  # type: ignore[index]
        assert f"Ray's logs of this sweep stay in {logs}" in out and Path(logs, "raylet.out").is_file()
        listening = _listening(_tree(driver.pid))
        names = {name for _, name, _, _ in listening}
        assert {"gcs_server", "raylet"} <= names and len(listening) >= 6, listening
        assert [entry for entry in listening if entry[2] not in LOOPBACK] == []
        token_file = home / ".ray" / "auth_token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/api/version", timeout=10)
        assert refused.value.code == 401  # the dashboard stays up, behind the token
        request = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token_file.read_text().strip()}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        # another shell joins the kept Ray, as `--address auto` does (RAY_ADDRESS); Ray would turn
        # 127.0.0.1 into this machine's address, where a loopback-only Ray does not listen
        (manifest,) = (tmp_path / "sweeps").glob("*/manifest.json")
        gcs = __import__("json").loads(manifest.read_text())["address"]
        assert gcs.startswith("127.0.0.1:") and gcs != ray_cluster  # its own Ray, not the one left to join
        join = (
            "from biollm_platform.sweep.local_ray import connect; import ray; "
            "handle = connect('auto'); print(handle.address, ray.cluster_resources()['CPU'])"
        )
        joined = subprocess.run(
            [sys.executable, "-c", join], env={**env, "RAY_ADDRESS": gcs}, capture_output=True, text=True, timeout=120
        )
        assert joined.returncode == 0 and joined.stdout.split() == [gcs, "2.0"], joined.stderr
        ray_pids = _tree(driver.pid)[1:]
        os.kill(driver.pid, signal.SIGINT)  # Ctrl-C
        rest = driver.communicate(timeout=60)[0]
        assert driver.returncode == 0, out + rest
        assert "Ray stopped" in rest
        time.sleep(2)
        assert [pid for pid in ray_pids if Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()] == []
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
