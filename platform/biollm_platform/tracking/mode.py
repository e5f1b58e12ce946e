"""Which W&B mode a run really uses: a pure function of the configured mode and the environment.

Precedence (documented in ``logging.wandb_mode``'s description and the README):

1. ``WANDB_MODE``, when set and non-empty, overrides ``logging.wandb_mode`` (W&B's own convention:
   the environment of a job beats the file it was submitted with). W&B's aliases are accepted:
   ``run`` means online, ``dryrun`` means offline.
2. Otherwise ``logging.wandb_mode`` (default ``offline``).
3. ``online`` without an API key falls back to ``offline`` with a warning: the run is kept on disk
   and can be uploaded later with ``wandb sync``; nothing is lost and no login prompt blocks a worker.
   A key is ``WANDB_API_KEY`` or the one ``wandb login`` wrote to the netrc file (``NETRC``, else
   ``~/.netrc``) for the W&B host (``WANDB_BASE_URL``, else api.wandb.ai), as W&B itself reads it.

``run_settings`` applies the same rule to the other keys W&B reads from the environment: a config key
that is set wins; an unset one (null) leaves the environment's ``WANDB_PROJECT``, ``WANDB_ENTITY``,
``WANDB_DIR``, ``WANDB_RESUME`` in charge; BioLLM's defaults come last.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from biollm_core.errors import UserError

WandbMode = Literal["online", "offline", "disabled"]
MODES: tuple[WandbMode, ...] = ("online", "offline", "disabled")
_ENV_ALIASES: dict[str, WandbMode] = {"online": "online", "run": "online", "offline": "offline",
                                      "dryrun": "offline", "disabled": "disabled"}


@dataclass(frozen=True)
class ModeResolution:
    """The effective mode, what was asked for and by whom, and the warning to show (if any)."""

    mode: WandbMode
    requested: WandbMode
    source: str  # "WANDB_MODE" or the config key that set it
    warning: str | None = None


def api_key_source(environ: Mapping[str, str]) -> str | None:
    """Where W&B would find an API key: "WANDB_API_KEY", "netrc" (`wandb login`), or None. Never the key."""
    if environ.get("WANDB_API_KEY", "").strip():
        return "WANDB_API_KEY"
    host = urlparse(environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    path = Path(environ.get("NETRC") or Path(environ.get("HOME") or Path.home()) / ".netrc")
    try:
        entry = netrc.netrc(os.fspath(path)).authenticators(host) if path.is_file() else None
    except (OSError, netrc.NetrcParseError):
        return None
    return "netrc" if entry and entry[2] else None


def offline_fallback_warning(source: str) -> str:
    """The one-line warning for online mode without an API key."""
    return (
        f"W&B online mode was requested ({source}) but no API key is set (WANDB_API_KEY, or `wandb login`): "
        "logging offline instead. Upload later with `wandb sync <run folder>`."
    )


def resolve_wandb_mode(
    configured: str, environ: Mapping[str, str], config_key: str = "logging.wandb_mode"
) -> ModeResolution:
    """The mode a run uses, from ``logging.wandb_mode`` and the environment (WANDB_MODE, WANDB_API_KEY)."""
    env_mode = environ.get("WANDB_MODE", "").strip().lower()
    if env_mode:
        if env_mode not in _ENV_ALIASES:
            raise UserError(
                f"WANDB_MODE={environ['WANDB_MODE']!r}: expected one of online, offline, disabled "
                "(or W&B's aliases run, dryrun)"
            )
        requested, source = _ENV_ALIASES[env_mode], "WANDB_MODE"
    else:
        if configured not in MODES:
            raise UserError(f"{config_key}={configured!r}: expected one of {', '.join(MODES)}")
        requested, source = configured, config_key  # type: ignore[assignment]
    if requested == "online" and api_key_source(environ) is None:
        return ModeResolution("offline", requested, source, offline_fallback_warning(f"{source}=online"))
    return ModeResolution(requested, requested, source)


@dataclass(frozen=True)
class RunSettings:
    """What a W&B run is opened with, each from the config when set, else the environment, else BioLLM."""

    project: str
    entity: str | None
    dir: str
    resume: str


DEFAULT_PROJECT = "biollm-cls"


def run_settings(
    *,
    project: str | None,
    entity: str | None,
    directory: str | None,
    resume: str | None,
    out_dir: Path,
    environ: Mapping[str, str],
) -> RunSettings:
    """Config value if set, else WANDB_PROJECT / WANDB_ENTITY / WANDB_DIR / WANDB_RESUME, else our default.

    The default directory is the run's output directory (a sweep directory then holds every trial's
    run); the default resume policy is ``allow`` (a retried trial continues its own W&B run).
    """
    def env(name: str) -> str | None:
        return environ.get(name, "").strip() or None

    return RunSettings(
        project=project or env("WANDB_PROJECT") or DEFAULT_PROJECT,
        entity=entity or env("WANDB_ENTITY"),
        dir=directory or env("WANDB_DIR") or str(out_dir),
        resume=resume or env("WANDB_RESUME") or "allow",
    )
