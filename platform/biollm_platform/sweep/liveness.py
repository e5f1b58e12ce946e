"""Is a sweep's driver still alive? Its pid (on this host) and its heartbeat in the manifest say.

The driver writes ``heartbeat_at`` every ``heartbeat_interval_s()`` seconds. A reader (`sweep status`,
`sweep list`) sees a RUNNING sweep whose driver is gone as INTERRUPTED, with the command that resumes
it; it writes nothing (the next driver, `sweep resume`, reconciles the manifest).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from .manifest import Manifest, now
from .proc_time import process_started_at

HEARTBEAT_ENV = "BIOLLM_SWEEP_HEARTBEAT_S"
DEFAULT_HEARTBEAT_S = 10.0
STALE_AFTER_BEATS = 6  # another host's driver is presumed dead after this many missed heartbeats
LIVE_STATES = ("CREATED", "RUNNING")


def heartbeat_interval_s() -> float:
    try:
        return max(0.1, float(os.environ.get(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S)))
    except ValueError:
        return DEFAULT_HEARTBEAT_S


def claim_driver(manifest: Manifest) -> None:
    """Record this process as the sweep's driver (pid, host, process start time, first heartbeat)."""
    manifest.driver_pid = os.getpid()
    manifest.driver_host = socket.gethostname()
    manifest.driver_started_at = process_started_at()
    manifest.heartbeat_at = now()


def release_driver(manifest: Manifest) -> None:
    manifest.driver_pid = manifest.driver_host = manifest.driver_started_at = None
    manifest.heartbeat_at = now()


def _pid_alive(pid: int, started_at: float | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a process of another user holds that pid: not ours to judge, assume alive
    if started_at is None:
        return True
    theirs = process_started_at(pid)
    return theirs is None or abs(theirs - started_at) < 2.0  # a different start time: the pid was reused


def driver_running(manifest: Manifest) -> bool:
    """Does the recorded driver still run (whatever the status says)? Another host's counts while its
    heartbeat is fresh."""
    return bool(manifest.driver_pid) and not manifest.job_id and _why_gone(manifest, lambda: datetime.now(UTC)) is None


def driver_gone(manifest: Manifest, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> str | None:
    """Why the driver of a CREATED/RUNNING local sweep is gone, or None while it may be alive."""
    if manifest.status not in LIVE_STATES or manifest.job_id:
        return None  # finished, stopped, or a remote job (its cluster knows its state)
    return _why_gone(manifest, clock)


def _why_gone(manifest: Manifest, clock: Callable[[], datetime]) -> str | None:
    if manifest.driver_pid and manifest.driver_host == socket.gethostname():
        if not _pid_alive(manifest.driver_pid, manifest.driver_started_at):
            return f"its driver (pid {manifest.driver_pid}) is no longer running"
        return None
    if manifest.heartbeat_at:
        age = (clock() - datetime.fromisoformat(manifest.heartbeat_at)).total_seconds()
        if age > STALE_AFTER_BEATS * heartbeat_interval_s():
            host = f" on {manifest.driver_host}" if manifest.driver_host else ""
            return f"its driver{host} has sent no heartbeat for {age:.0f} s"
    return None


def effective(manifest: Manifest) -> tuple[Manifest, str | None]:
    """The manifest as it stands: INTERRUPTED (running trials back to PENDING) when its driver is gone.

    Returns (manifest copy, note); the note says why and how to resume, None when nothing changed.
    """
    reason = driver_gone(manifest)
    if reason is None:
        return manifest, None
    view = manifest.model_copy(deep=True)
    view.status = "INTERRUPTED"
    for trial in view.trials:
        if trial.state == "RUNNING":
            trial.state = "PENDING"
    return view, f"{reason}; `biollm sweep resume {manifest.sweep_id}` continues it"


class Heartbeat:
    """A daemon thread that calls ``beat`` every interval until stopped (the driver's sign of life)."""

    def __init__(self, beat: Callable[[], None], interval_s: float | None = None) -> None:
        self._beat = beat
        self._interval_s = interval_s or heartbeat_interval_s()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="biollm-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - a failed beat (full disk) must not kill the sweep; the next may work
                pass

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
