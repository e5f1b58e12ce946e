"""`biollm doctor`'s checks: what this machine offers a run (the seed's check_cuda.py, and more).

Each ``*_report`` function returns a JSON-safe dict and never raises for what it probes: a missing
package, an unreachable cluster or a driver error becomes a field of the report. Secrets are reported
as present or absent, never by value. Nothing here starts a Ray cluster or opens a W&B run.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform as platform_info  # the standard-library module (this package must not shadow it)
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CLUSTER_TIMEOUT_S = 2.0  # per request: a reachable dashboard answers in milliseconds


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def python_report() -> dict[str, Any]:
    return {"version": platform_info.python_version(), "executable": sys.executable,
            "platform": platform_info.platform(), "cpu_count": os.cpu_count()}


def torch_report() -> dict[str, Any]:
    """torch build, CUDA/MPS availability, every CUDA device with its memory, bf16 support."""
    import torch

    cuda = torch.cuda.is_available()
    devices = []
    if cuda:
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            free, total = torch.cuda.mem_get_info(index)
            devices.append({
                "index": index, "name": props.name, "capability": f"{props.major}.{props.minor}",
                "total_memory_bytes": int(total), "free_memory_bytes": int(free),
                "multiprocessors": props.multi_processor_count,
            })
    mps_built = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_built())
    mps = mps_built and torch.backends.mps.is_available()
    return {
        "version": torch.__version__,
        "cuda_built": torch.version.cuda,
        "cuda_available": cuda,
        "cudnn_version": torch.backends.cudnn.version() if cuda else None,
        "cuda_devices": devices,
        # bf16 autocast on the GPU needs Ampere or newer; on the CPU it is always available (slow without AMX).
        "cuda_bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()),
        "mps_built": mps_built,
        "mps_available": mps,
        "cpu_threads": torch.get_num_threads(),
        "default_device": "cuda" if cuda else ("mps" if mps else "cpu"),
    }


def _get_json(url: str, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=CLUSTER_TIMEOUT_S) as response:  # noqa: S310 (http(s) only)
        return json.loads(response.read().decode())


def _auth_headers() -> dict[str, str]:
    """Ray's token header when token auth is on (RAY_AUTH_MODE=token), as JobSubmissionClient sends it."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return {}  # importing Ray's auth helpers costs a second or more: only when asked
    from biollm_platform.sweep.ray_internals import token_auth_headers

    return token_auth_headers()


def _cluster_resources(status: dict[str, Any]) -> dict[str, dict[str, float]] | None:
    """The dashboard's /api/cluster_status -> {resource: {"used": x, "total": y}} (None if absent)."""
    usage = (((status or {}).get("data") or {}).get("clusterStatus") or {}).get("loadMetricsReport", {}).get("usage")
    if not isinstance(usage, dict):
        return None
    return {name: {"used": float(v[0]), "total": float(v[1])} for name, v in sorted(usage.items())
            if isinstance(v, list | tuple) and len(v) == 2 and not name.startswith("node:")}


def cluster_report(address: str | None) -> dict[str, Any]:
    """Is a Ray cluster reachable at ``address``? Never starts one; a few seconds at most.

    ``http(s)://host:port`` is the dashboard (Ray Jobs) address: its version and resources are read from
    the REST API. ``host:port`` (GCS) and ``ray://host:port`` (Ray Client) get a TCP connection check;
    ``auto`` is resolved as Ray resolves it (RAY_ADDRESS, else this machine's latest cluster) first.
    """
    if not address:
        return {"address": None, "checked": False, "note": "none checked: pass --address or set RAY_ADDRESS"}
    if address == "local":
        return {"address": address, "checked": False, "note": "'local' starts a new Ray; nothing to check"}
    if address == "auto":  # what `ray.init(address="auto")` and `biollm sweep submit --address auto` join
        from biollm_platform.sweep.ray_internals import resolve_auto_address

        found = resolve_auto_address()
        if found is None or found == "auto":
            return {"address": "auto", "checked": True, "reachable": False,
                    "error": "no running Ray cluster found (RAY_ADDRESS is unset and none was started on this machine)"}
        return {**cluster_report(found), "resolved_from": "auto"}
    started = time.perf_counter()
    report: dict[str, Any] = {"address": address, "checked": True, "reachable": False}
    parsed = urlparse(address if "://" in address else f"gcs://{address}")
    try:
        if parsed.scheme in ("http", "https"):
            base = address.rstrip("/")
            headers = _auth_headers()
            report["ray_version"] = _get_json(f"{base}/api/version", headers).get("ray_version")
            report["reachable"] = True
            report["kind"] = "dashboard"
            try:
                report["resources"] = _cluster_resources(_get_json(f"{base}/api/cluster_status", headers))
            except (OSError, ValueError) as error:
                report["resources"] = None
                report["resources_error"] = str(error)
        else:
            if parsed.hostname is None or parsed.port is None:
                report["error"] = f"expected http://host:port, host:port or ray://host:port, got {address!r}"
                return report
            with socket.create_connection((parsed.hostname, parsed.port), timeout=CLUSTER_TIMEOUT_S):
                pass
            report["reachable"] = True
            report["kind"] = "ray client" if parsed.scheme == "ray" else "gcs"
            report["note"] = "TCP port open; pass the dashboard URL (http://host:8265) to read version and resources"
    except urllib.error.HTTPError as error:
        hint = " (token auth: set RAY_AUTH_MODE=token)" if error.code in (401, 403) else ""
        report["error"] = f"HTTP {error.code} {error.reason}{hint}"
    except (OSError, ValueError) as error:
        report["error"] = str(getattr(error, "reason", None) or error) or type(error).__name__
    finally:
        report["elapsed_s"] = round(time.perf_counter() - started, 3)
    return report


def ray_report(address: str | None) -> dict[str, Any]:
    return {"version": _version("ray"), "cluster": cluster_report(address)}


def wandb_report() -> dict[str, Any]:
    """W&B mode and whether an API key is set (never its value)."""
    from biollm_platform.tracking.mode import api_key_source  # the same rule a run's online mode uses

    source = api_key_source(os.environ)
    disabled = os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true", "yes")
    return {
        "version": _version("wandb"),
        "mode": "disabled" if disabled else os.environ.get("WANDB_MODE") or "unset (the run config's logging.wandb_mode decides)",
        "api_key_set": source is not None,
        "api_key_source": source,
        "base_url": os.environ.get("WANDB_BASE_URL"),
        "dir": os.environ.get("WANDB_DIR"),
    }


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hf_report() -> dict[str, Any]:
    """Hugging Face cache location, what it holds and the offline switches."""
    try:
        from huggingface_hub import constants

        home, hub_cache = constants.HF_HOME, constants.HF_HUB_CACHE
    except ImportError:
        home = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
        hub_cache = os.environ.get("HF_HUB_CACHE", str(Path(home) / "hub"))
    cache = Path(hub_cache)
    repos = sorted(p.name for p in cache.iterdir() if p.is_dir() and "--" in p.name) if cache.is_dir() else []
    offline = {name: _truthy(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    return {
        "transformers_version": _version("transformers"), "datasets_version": _version("datasets"),
        "hf_home": str(home), "hub_cache": str(cache), "hub_cache_exists": cache.is_dir(),
        "cached_repos": repos, "offline": any(offline.values()), "offline_env": offline,
        "token_set": bool(os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or (Path(home) / "token").is_file()),
    }


def collect(address: str | None) -> dict[str, Any]:
    """The whole report: python, torch, ray (and the cluster at ``address``), wandb, huggingface."""
    return {"python": python_report(), "torch": torch_report(), "ray": ray_report(address),
            "wandb": wandb_report(), "huggingface": hf_report()}
