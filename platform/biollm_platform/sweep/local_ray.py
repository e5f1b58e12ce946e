"""Start or join the Ray cluster a sweep runs on, with settings measured to keep small sweeps moving.

Trial drivers (the Tune trial that only starts a TorchTrainer and waits) run on a custom resource,
``trial_driver``, so they never hold a CPU that a Train worker needs: on 2 cores a driver reserving a
CPU beside a 1-CPU worker left worker groups waiting for resources that never came.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

# Read by Ray at import time. `uv run biollm ...` would otherwise make Ray ship the working directory
# and re-run `uv run` for every worker process; the local workers already share this environment.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

from biollm_core.errors import UserError  # noqa: E402

DRIVER_RESOURCE = "trial_driver"
DRIVER_SLOTS = 64  # concurrent trial drivers a node can host; the real limit is CPUs/GPUs

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


def enable_token_auth_if_available() -> None:
    """Clients of a token-auth cluster must send its token; Ray only does so with RAY_AUTH_MODE=token.

    A local `ray.init()` turns token auth on and writes ~/.ray/auth_token; joining it (or a Ray Jobs
    head) without RAY_AUTH_MODE=token fails with an authentication error.
    """
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


@dataclass(frozen=True)
class RayHandle:
    """The cluster a sweep is connected to."""

    address: str  # GCS address
    dashboard_url: str | None
    started_here: bool


def connect(address: str | None = None, *, verbose: bool = False, num_cpus: int | None = None) -> RayHandle:
    """Join ``address`` (a GCS address or "auto") or start a local Ray with the dashboard and driver slots.

    The dashboard stays on: clusters started without it hung in worker-group startup here.
    Raises UserError (one line) when the address cannot be reached.
    """
    apply_env_defaults()
    import ray

    if ray.is_initialized():
        context = ray.get_runtime_context()
        return RayHandle(context.gcs_address, _dashboard(ray), started_here=False)
    quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR}
    if address:
        enable_token_auth_if_available()
        try:
            info = ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"cannot connect to Ray at {address}: {first}") from None
        _ensure_driver_resource(ray)
        return RayHandle(info.address_info["gcs_address"], _dashboard(ray, info), started_here=False)
    info = ray.init(
        num_cpus=num_cpus,
        include_dashboard=True,
        resources={DRIVER_RESOURCE: DRIVER_SLOTS},
        **quiet,
    )
    return RayHandle(info.address_info["gcs_address"], _dashboard(ray, info), started_here=True)


def _dashboard(ray, info=None) -> str | None:  # type: ignore[no-untyped-def]
    if info is not None:
        url = info.address_info.get("webui_url")
    else:
        node = ray._private.worker._global_node  # set in the process that started or joined the cluster
        url = getattr(node, "webui_url", None) if node is not None else None
    if url and not url.startswith("http"):
        url = f"http://{url}"
    return url or None


def _ensure_driver_resource(ray) -> None:  # type: ignore[no-untyped-def]
    if ray.cluster_resources().get(DRIVER_RESOURCE, 0) < 1:
        raise UserError(
            f"the Ray cluster at {ray.get_runtime_context().gcs_address} declares no "
            f"`{DRIVER_RESOURCE}` resource; "
            f"start its head with `ray start --head --resources='{{\"{DRIVER_RESOURCE}\": {DRIVER_SLOTS}}}'` "
            "(cluster.yaml does)"
        )


def shutdown(handle: RayHandle) -> None:
    """Disconnect; stops the cluster only when this process started it."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
