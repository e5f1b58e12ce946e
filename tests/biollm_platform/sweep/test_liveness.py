"""A sweep driver's liveness: its pid on this host, its heartbeat elsewhere."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from biollm_platform.sweep.liveness import Heartbeat, claim_driver, driver_gone, effective
from biollm_platform.sweep.manifest import Manifest, TrialRecord


def _running(**fields: object) -> Manifest:
    trials = [TrialRecord(trial_id="sleep-seed7", mode="sleep", seed=7, axes={}, out_dir="sleep-seed7", state="RUNNING")]
    return Manifest(sweep_id="s-1", name="s", status="RUNNING", trials=trials, **fields)


def test_this_process_is_alive() -> None:
    manifest = _running()
    claim_driver(manifest)
    assert driver_gone(manifest) is None and effective(manifest) == (manifest, None)


def test_a_dead_pid_is_interrupted_and_says_how_to_resume() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    manifest = _running(driver_pid=gone.pid, driver_host=socket.gethostname())
    view, note = effective(manifest)
    assert view.status == "INTERRUPTED" and view.trials[0].state == "PENDING"
    assert manifest.status == "RUNNING"  # the record itself is left to the next driver
    assert note == f"its driver (pid {gone.pid}) is no longer running; `biollm sweep resume s-1` continues it"


def test_a_reused_pid_is_not_the_driver() -> None:
    manifest = _running(driver_pid=os.getpid(), driver_host=socket.gethostname(), driver_started_at=12345.0)
    assert driver_gone(manifest) == f"its driver (pid {os.getpid()}) is no longer running"


def test_another_hosts_driver_is_judged_by_its_heartbeat() -> None:
    beat = datetime(2026, 1, 1, tzinfo=UTC)
    manifest = _running(driver_pid=1, driver_host="elsewhere", heartbeat_at=beat.isoformat())
    assert driver_gone(manifest, clock=lambda: beat + timedelta(seconds=30)) is None
    assert driver_gone(manifest, clock=lambda: beat + timedelta(seconds=600)) == (
        "its driver on elsewhere has sent no heartbeat for 600 s"
    )


def test_finished_and_remote_sweeps_are_not_judged() -> None:
    assert driver_gone(_running(driver_pid=1, driver_host=socket.gethostname()).model_copy(update={"status": "FINISHED"})) is None
    assert driver_gone(_running(driver_pid=1, driver_host=socket.gethostname(), job_id="raysubmit_1")) is None


def test_heartbeat_beats_until_stopped() -> None:
    beats: list[float] = []
    with Heartbeat(lambda: beats.append(time.monotonic()), interval_s=0.05):
        time.sleep(0.4)
    count = len(beats)
    time.sleep(0.15)
    assert count >= 3 and len(beats) == count
