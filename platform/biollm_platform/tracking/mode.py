"""Which W&B mode a run really uses: a pure function of the configured mode and the environment.

Precedence (documented in ``logging.wandb_mode``'s description and the README):

1. ``WANDB_MODE``, when set and non-empty, overrides ``logging.wandb_mode`` (W&B's own convention:
   the environment of a job beats the file it was submitted with). W&B's aliases are accepted:
   ``run`` means online, ``dryrun`` means offline.
2. Otherwise ``logging.wandb_mode`` (default ``offline``).
3. ``online`` without ``WANDB_API_KEY`` falls back to ``offline`` with a warning: the run is kept
   on disk and can be uploaded later with ``wandb sync``; nothing is lost and no login prompt blocks
   a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

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


def offline_fallback_warning(source: str) -> str:
    """The one-line warning for online mode without an API key."""
    return (
        f"W&B online mode was requested ({source}) but WANDB_API_KEY is not set: logging offline instead. "
        "Upload later with `wandb sync <run folder>` once WANDB_API_KEY is exported."
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
    if requested == "online" and not environ.get("WANDB_API_KEY", "").strip():
        return ModeResolution("offline", requested, source, offline_fallback_warning(f"{source}=online"))
    return ModeResolution(requested, requested, source)
