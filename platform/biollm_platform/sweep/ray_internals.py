"""Every use of Ray's private API, in one place, each with a fallback to public behaviour.

Ray's public API leaves a few things out that sweeps on small machines need. Each is a small function
here that names the private symbols it touches; when Ray moves them, the function falls back to what
the public API does (correct, a little slower or less informative) instead of failing, and
``tests/biollm_platform/sweep/test_ray_internals.py`` fails so that the next Ray upgrade sees it.

- ``engine_trainer_class``: Train V2 starts a ``DatasetManager`` actor for every run (one more Python
  process importing Ray Data per trial) even without datasets; the trainer drops that callback.
- ``restrict_to_loopback``: Ray's own single-machine mode (the default on macOS and Windows) binds
  every server of a local cluster to 127.0.0.1; on Linux it is ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``,
  read when ``ray._private.ray_constants`` is imported.
- ``keep_workers_in_this_environment``: a driver run by ``uv run`` (``uv run biollm ...``, ``uv run
  pytest``) makes Ray ship the working directory and start every worker with ``uv run`` there, in a
  fresh virtual environment without compiled bytecode: ~4.5 s more CPU for each worker that imports
  torch. ``RAY_ENABLE_UV_RUN_RUNTIME_ENV=0``, read when ``ray._private.ray_constants`` is imported.
- ``autoscaler_node_shapes``: node types an autoscaler may still launch (for the feasibility check).
- ``current_dashboard_url``: the dashboard of the cluster this process already joined.
- ``resolve_auto_address``: what ``ray.init(address="auto")`` would join, without joining.
- ``token_auth_headers``: the HTTP header a token-auth dashboard wants (``biollm doctor``'s requests).
"""

from __future__ import annotations

import os
from typing import Any

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
UV_HOOK_ENV = "RAY_ENABLE_UV_RUN_RUNTIME_ENV"


def engine_trainer_class(*, torch_backend: bool = False) -> type:
    """Ray Train's ``DataParallelTrainer`` (or ``TorchTrainer``), minus the dataset actor when unused.

    Without datasets the ``DatasetsCallback`` is dropped; workers then get no dataset shard provider,
    which Train allows (an optional argument of the worker's train context). Everything else (backend,
    placement-group cleaner, user callbacks) is Train's own default. Falls back to the public class.
    """
    if torch_backend:
        from ray.train.torch import TorchTrainer as base
    else:
        from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer as base
    try:
        from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
    except ImportError:
        return base
    if not callable(getattr(base, "_create_default_callbacks", None)):
        return base

    class EngineTrainer(base):  # type: ignore[misc,valid-type]
        def _create_default_callbacks(self) -> list[Any]:
            callbacks = super()._create_default_callbacks()
            if self.datasets:
                return callbacks
            return [c for c in callbacks if not isinstance(c, DatasetsCallback)]

    EngineTrainer.__name__ = EngineTrainer.__qualname__ = f"Engine{base.__name__}"
    return EngineTrainer


def restrict_to_loopback() -> bool:
    """Make the next local cluster this process starts listen on 127.0.0.1 only; True when it applies.

    Sets the variable for Ray's child processes and, when Ray's constants were imported already (a
    process that used Ray before), the constant itself.
    """
    os.environ[LOOPBACK_ENV] = "0"
    try:
        from ray._private import ray_constants
    except ImportError:
        return False
    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):
        return False
    ray_constants.ENABLE_RAY_CLUSTER = False
    return True


def keep_workers_in_this_environment() -> bool:
    """Make the next ``ray.init`` of this process leave its workers in this process's environment;
    True when it applies. A user's own ``RAY_ENABLE_UV_RUN_RUNTIME_ENV`` wins.

    As ``restrict_to_loopback``: the variable for processes that import Ray later and, when Ray's
    constants were imported already (test collection, a user's script), the constant itself, which
    ``ray.init`` reads at call time.
    """
    os.environ.setdefault(UV_HOOK_ENV, "0")
    try:
        from ray._private import ray_constants
    except ImportError:
        return False
    if not hasattr(ray_constants, UV_HOOK_ENV):
        return False
    enabled = ray_constants.env_bool(UV_HOOK_ENV, True)  # the variable as Ray itself reads it
    setattr(ray_constants, UV_HOOK_ENV, enabled)
    return not enabled


def autoscaler_node_shapes() -> list[dict[str, float]]:
    """Resources of the node types an autoscaler may launch (empty without an autoscaler)."""
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - no autoscaler state on plain clusters, or Ray moved it
        return []
    if config is None:
        return []
    return [dict(group.resources) for group in config.node_group_configs if group.max_count != 0]


def current_dashboard_url() -> str | None:
    """The dashboard URL of the cluster this process is connected to, when Ray knows it."""
    try:
        from ray._private.worker import _global_node as node
    except ImportError:
        return None
    url = getattr(node, "webui_url", None) if node is not None else None
    return url or None


def resolve_auto_address() -> str | None:
    """The GCS address ``ray.init(address="auto")`` would join (RAY_ADDRESS, else this machine's latest
    cluster), or None when there is none. Joins nothing."""
    try:
        from ray._private.services import get_ray_address_from_environment
    except ImportError:
        return os.environ.get("RAY_ADDRESS") or None
    try:
        address = get_ray_address_from_environment("auto", None)
    except ConnectionError:
        return None
    return None if address in (None, "auto") else address


def token_auth_headers() -> dict[str, str]:
    """Ray's token header for HTTP requests to a dashboard, as JobSubmissionClient sends it ({} if none)."""
    try:
        from ray._private.authentication.http_token_authentication import get_auth_headers_if_auth_enabled

        return dict(get_auth_headers_if_auth_enabled({}))
    except Exception:  # noqa: BLE001 - no token, or Ray moved it: ask without one
        return {}
