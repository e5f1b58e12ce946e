"""Start or join the Ray cluster a sweep runs on, with settings measured to keep small sweeps moving.

Addresses mean what they mean to Ray's own CLI (``--address`` or ``RAY_ADDRESS``): none starts a local
Ray; ``auto`` joins the cluster ``ray.init(address="auto")`` finds (RAY_ADDRESS, else this machine's
latest); ``host:port`` joins that GCS; ``http(s)://`` is a dashboard, where sweeps go as Ray Jobs
(``remote.py``). Joining gives up after ``connect_timeout_s()`` with one line.

A local Ray listens on 127.0.0.1 only (GCS, raylet, object manager, workers, dashboard and its agent)
and keeps its token in a file only its owner can read.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from biollm_core.errors import UserError

from . import ray_internals

CONNECT_TIMEOUT_ENV = "BIOLLM_RAY_CONNECT_TIMEOUT_S"
DEFAULT_CONNECT_TIMEOUT_S = 20.0

# Settings for fast, quiet Train runs. Train propagates RAY_TRAIN_* from the driver to its controller
# and workers (ray/train/v2/_internal/constants.py: ENV_VARS_TO_PROPAGATE).
RAY_ENV_DEFAULTS = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",  # controller poll: end-of-run noticed within 0.5 s, not 2 s
    "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "180",  # busy 2-core machines start workers slowly
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",  # one actor less per trial; no preemptible nodes locally
    "RAY_TRAIN_METRICS_ENABLED": "0",  # Train's Prometheus metrics callbacks: overhead we do not read
    "RAY_TRAIN_ENABLE_STATE_ACTOR_RECONCILIATION": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no CSV/JSON/TensorBoard copies of metrics.jsonl
    "TUNE_RESULT_BUFFER_LENGTH": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def apply_env_defaults() -> None:
    """Set the RAY_* defaults above unless the user set them."""
    for key, value in RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def connect_timeout_s() -> float:
    """How long joining a cluster may take before it is reported unreachable (BIOLLM_RAY_CONNECT_TIMEOUT_S)."""
    try:
        return max(1.0, float(os.environ.get(CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S)))
    except ValueError:
        raise UserError(f"{CONNECT_TIMEOUT_ENV}={os.environ[CONNECT_TIMEOUT_ENV]!r}: expected seconds") from None


def token_path() -> Path:
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def enable_token_auth_if_available() -> None:
    """Clients of a token-auth cluster must send its token; Ray only does so with RAY_AUTH_MODE=token.

    A local `ray.init()` turns token auth on and writes ~/.ray/auth_token; joining it (or a Ray Jobs
    head) without RAY_AUTH_MODE=token fails with an authentication error.
    """
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or token_path().is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def secure_token_file() -> None:
    """The local cluster's token file readable by its owner only (Ray writes it with the umask, 644).

    Creates it (as Ray would: 32 random bytes in hex) when token auth needs one and none exists, so it
    is never readable by others, not even for a moment; narrows an existing one to 600.
    """
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return
    path = token_path()
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it meanwhile: narrow it below
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    if path.is_file() and path.stat().st_mode & 0o077:
        try:
            path.chmod(0o600)
        except PermissionError:
            pass  # not our file; Ray reads it as it is


@dataclass(frozen=True)
class RayHandle:
    """The cluster a sweep is connected to."""

    address: str  # GCS address
    dashboard_url: str | None
    started_here: bool
    session_dir: str | None = None  # Ray's session directory (logs under logs/), on the head's disk

    @property
    def logs_dir(self) -> str | None:
        return f"{self.session_dir}/logs" if self.session_dir else None


def _gcs_target(address: str) -> tuple[str, str, int]:
    """(GCS address, host, port) that ``address`` names; UserError for forms a sweep cannot join."""
    if address.startswith("ray://"):
        raise UserError(
            f"--address {address}: Ray Client addresses are not supported; give the dashboard "
            "(http://head:8265, the sweep runs as a Ray Job) or the GCS address (host:6379)"
        )
    if address == "auto":
        found = ray_internals.resolve_auto_address()
        if found is None:
            raise UserError(
                "--address auto: no running Ray cluster found (RAY_ADDRESS is unset and none was started "
                "on this machine); start one with `ray start --head` or omit --address for a local one"
            )
        address = found
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected host:port, auto, or http(s)://host:port")
    return address, host.strip("[]"), int(port)


def _probe(address: str, host: str, port: int, timeout_s: float) -> None:
    """Fail fast (one line) when nothing accepts connections at the GCS address."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or type(error).__name__)
        raise UserError(
            f"cannot connect to Ray at {address}: {reason.lower()} (is a Ray head running there? "
            f"`ray status --address {address}` checks)"
        ) from None


def connect(
    address: str | None = None, *, verbose: bool = False, num_cpus: int | None = None, include_dashboard: bool = True
) -> RayHandle:
    """Join ``address`` (a GCS address or "auto") or, without one, start a local Ray.

    The dashboard stays on by default: clusters started without it hung in worker-group startup here.
    Raises UserError (one line) when the address cannot be reached within ``connect_timeout_s()``.
    """
    apply_env_defaults()
    if address in ("", "local"):
        address = None
    if address is None:
        ray_internals.restrict_to_loopback()
    elif "ray" not in sys.modules:  # Ray reads these at import; a process that already uses Ray keeps its own
        _bound_ray_retries(connect_timeout_s())
    # `uv run biollm ...` would otherwise make Ray ship the working directory and start every worker
    # with `uv run` in a fresh environment without bytecode; the workers share this one already.
    ray_internals.keep_workers_in_this_environment()
    import ray

    if ray.is_initialized():
        context = ray.get_runtime_context()
        return RayHandle(context.gcs_address, _url(ray_internals.current_dashboard_url()), started_here=False)
    quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR}
    if address is not None:
        return _join(ray, address, quiet)
    secure_token_file()
    # "local": a new cluster, always. Without an address ray.init would join RAY_ADDRESS or a cluster
    # `ray start` left on this machine (/tmp/ray/ray_current_cluster), and the sweep's Ray would not be its own.
    info = ray.init(
        address="local", num_cpus=num_cpus, include_dashboard=include_dashboard, dashboard_host="127.0.0.1", **quiet
    )
    secure_token_file()  # Ray may have written it
    return _handle(info, started_here=True)


def _bound_ray_retries(timeout_s: float) -> None:
    """Ray retries a GCS that does not answer 20 times, 35 s each; make it one try within the timeout.

    Measured on Ray 2.60 against a port that accepts connections but is no GCS: a join gives up after
    the cluster-id wait (``RAY_py_gcs_connect_timeout_s``) plus 5 to 10 s (test_local_ray.py checks the
    whole command stays within the timeout).
    """
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "1")
    os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", "2")
    os.environ.setdefault("RAY_py_gcs_connect_timeout_s", str(max(1, int(timeout_s) - 10)))


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _loopback_only(host: str, port: int) -> bool:
    """Does the cluster at loopback ``host:port`` listen on loopback only (a local sweep's own Ray)?

    Ray turns a loopback address into this machine's address before it connects; such a cluster is
    then joined in Ray's single-machine mode, which keeps 127.0.0.1.
    """
    import ray.util

    if not _is_loopback(host):
        return False
    machine = ray.util.get_node_ip_address()
    if _is_loopback(machine):
        return False  # Ray keeps loopback already
    try:
        with socket.create_connection((machine, port), timeout=2):
            return False
    except OSError:
        return True


def _join(ray, address: str, quiet: dict) -> RayHandle:  # type: ignore[no-untyped-def]
    gcs, host, port = _gcs_target(address)
    _probe(gcs, host, port, connect_timeout_s())
    if _loopback_only(host, port):
        ray_internals.restrict_to_loopback()
    enable_token_auth_if_available()
    with _stderr_held_back() as held:
        try:
            info = ray.init(address=gcs, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as error:
            held.drop()  # Ray's retry warnings: the one line below says it
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"cannot connect to Ray at {gcs}: {first[:300]}") from None
    return _handle(info, started_here=False)


class _HeldStderr:
    def __init__(self) -> None:
        self.keep = True

    def drop(self) -> None:
        self.keep = False


@contextmanager
def _stderr_held_back() -> Iterator[_HeldStderr]:
    """Hold back what Ray's core writes to file descriptor 2 while joining; pass it on unless dropped."""
    held = _HeldStderr()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold back
        yield held
        return
    with tempfile.TemporaryFile() as buffer:
        sys.stderr.flush()
        os.dup2(buffer.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if held.keep:
                buffer.seek(0)
                sys.stderr.write(buffer.read().decode(errors="replace"))


def _url(url: str | None) -> str | None:
    if url and not url.startswith("http"):
        url = f"http://{url}"
    return url or None


def _handle(info, *, started_here: bool) -> RayHandle:  # type: ignore[no-untyped-def]
    addresses = info.address_info
    return RayHandle(
        addresses["gcs_address"], _url(addresses.get("webui_url")), started_here, addresses.get("session_dir")
    )


def shutdown(handle: RayHandle) -> None:
    """Disconnect; stops the cluster only when this process started it."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
