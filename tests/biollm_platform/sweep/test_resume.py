"""A sweep's driver killed mid-run, a resumed driver stopped by `sweep stop`, then resumed to the end.

What each state says on the way: a killed driver's sweep shows INTERRUPTED with the resume command
(its heartbeat had been ticking); a stop stays STOPPED after the driver exits; the last resume
finishes only the missing trial, with the figures of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.sweep import app
from biollm_platform.sweep.extra_sinks import SINKS_ENV
from biollm_platform.sweep.liveness import HEARTBEAT_ENV
from biollm_platform.sweep.manifest import read_manifest

from .conftest import figures, tiny_sweep_file
from .fault_sink import fault_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _wait_for(predicate, timeout_s: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _state(root: Path, trial_id: str) -> str | None:
    manifests = list((root / "sweeps").glob("*/manifest.json"))
    return read_manifest(manifests[0].parent).trial(trial_id).state if manifests else None


def _driver(args: list[str], fault: str) -> subprocess.Popen:
    env = {**os.environ, SINKS_ENV: fault, HEARTBEAT_ENV: "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "biollm_platform.cli.sweep", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _heartbeat(sweep_dir: Path) -> datetime:
    return datetime.fromisoformat(read_manifest(sweep_dir).heartbeat_at or "1970-01-01T00:00:00+00:00")


def test_killed_driver_then_stop_then_resume(ray_cluster: str, repo_root: Path, tmp_path: Path, reference_run: Path) -> None:
    sweep_file = tiny_sweep_file(repo_root, tmp_path)
    # nosleep-seed7 blocks at step 7 (after its step-5 checkpoint) while cls-seed7 runs to the end
    first = _driver(["submit", str(sweep_file), "--address", ray_cluster], fault_spec("nosleep-seed7", "pause", 7))
    try:
        _wait_for(
            lambda: any((tmp_path / "sweeps").glob("*/nosleep-seed7/.pause_injected")) and _state(tmp_path, "cls-seed7") == "TERMINATED",
            400,
            "cls-seed7 to finish while nosleep-seed7 is paused",
        )
        (sweep_dir,) = (tmp_path / "sweeps").iterdir()
        beat = _heartbeat(sweep_dir)
        _wait_for(lambda: _heartbeat(sweep_dir) > beat, 10, "the driver's next heartbeat")  # beats while trials block
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    before = read_manifest(sweep_dir)
    assert before.status == "RUNNING" and before.driver_pid == first.pid  # what the dead driver left
    assert before.trial("cls-seed7").state == "TERMINATED" and before.trial("nosleep-seed7").state == "RUNNING"
    assert not (sweep_dir / "nosleep-seed7" / "summary.json").exists()
    done_mtime = (sweep_dir / "cls-seed7" / "summary.json").stat().st_mtime_ns
    root = str(sweep_dir.parent)

    status = CliRunner().invoke(app, ["status", sweep_dir.name, "--root", root, "--json"])
    data = json.loads(status.output)
    assert data["status"] == "INTERRUPTED" and f"`biollm sweep resume {sweep_dir.name}`" in data["note"]
    assert f"driver (pid {first.pid}) is no longer running" in data["note"]
    assert {t["trial_id"]: t["state"] for t in data["trials"]} == {"cls-seed7": "TERMINATED", "nosleep-seed7": "PENDING"}
    listed = CliRunner().invoke(app, ["list", "--root", root])
    assert "INTERRUPTED" in listed.output and "biollm sweep resume" in listed.output

    # resume in the background; nosleep-seed7 blocks at step 12 (after its step-10 checkpoint); stop it
    second = _driver(
        ["resume", sweep_dir.name, "--root", root, "--address", ray_cluster],
        fault_spec("nosleep-seed7", "pause", 12, ".pause2_injected"),
    )
    try:
        _wait_for(lambda: (sweep_dir / "nosleep-seed7" / ".pause2_injected").exists(), 300, "the resumed trial to block")
        stopped = CliRunner().invoke(app, ["stop", sweep_dir.name, "--root", root])
        assert stopped.exit_code == 0, stopped.output
        second.wait(timeout=120)  # the driver ends its trials and writes its last manifest
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
    after_stop = read_manifest(sweep_dir)
    assert after_stop.status == "STOPPED" and after_stop.driver_pid is None  # not overwritten with INTERRUPTED
    status = CliRunner().invoke(app, ["status", sweep_dir.name, "--root", root, "--json"])
    assert json.loads(status.output)["status"] == "STOPPED"

    result = CliRunner().invoke(app, ["resume", sweep_dir.name, "--root", root, "--address", ray_cluster])
    assert result.exit_code == 0, result.output

    after = read_manifest(sweep_dir)
    assert after.status == "FINISHED" and after.stop_requested_at is None
    assert after.trial("cls-seed7").attempts == 1  # not rerun
    assert (sweep_dir / "cls-seed7" / "summary.json").stat().st_mtime_ns == done_mtime
    assert after.trial("nosleep-seed7").attempts == 3  # killed, stopped, finished
    timing = json.loads((sweep_dir / "nosleep-seed7" / "ray_timing.json").read_text())
    assert [attempt["resumed"] for attempt in timing] == [True]  # continued from its step-10 checkpoint
    for trial in ("cls-seed7", "nosleep-seed7"):
        assert figures(sweep_dir / trial) == figures(reference_run / trial)
