"""The effective W&B mode: config vs WANDB_MODE, and the offline fallback without an API key."""

from __future__ import annotations

import pytest

from biollm_core.errors import UserError
from biollm_platform.tracking.mode import resolve_wandb_mode

KEY = {"WANDB_API_KEY": "k" * 40}


@pytest.mark.parametrize("configured", ["offline", "online", "disabled"])
def test_config_mode_used_when_env_is_unset(configured: str):
    resolution = resolve_wandb_mode(configured, KEY)
    assert (resolution.mode, resolution.source) == (configured, "logging.wandb_mode")
    assert resolution.warning is None


@pytest.mark.parametrize(("env_mode", "expected"), [("offline", "offline"), ("disabled", "disabled"),
                                                     ("ONLINE", "online"), ("run", "online"),
                                                     ("dryrun", "offline")])
def test_wandb_mode_env_overrides_config(env_mode: str, expected: str):
    configured = "offline" if expected == "online" else "online"
    resolution = resolve_wandb_mode(configured, {**KEY, "WANDB_MODE": env_mode})
    assert (resolution.mode, resolution.source) == (expected, "WANDB_MODE")


def test_empty_env_mode_is_ignored():
    assert resolve_wandb_mode("disabled", {"WANDB_MODE": "  "}).mode == "disabled"


@pytest.mark.parametrize(("configured", "environ", "source"), [
    ("online", {}, "logging.wandb_mode=online"),
    ("offline", {"WANDB_MODE": "online", "WANDB_API_KEY": " "}, "WANDB_MODE=online"),
])
def test_online_without_key_falls_back_to_offline(configured: str, environ: dict, source: str):
    resolution = resolve_wandb_mode(configured, environ)
    assert (resolution.mode, resolution.requested) == ("offline", "online")
    assert source in resolution.warning and "WANDB_API_KEY is not set" in resolution.warning
    assert "wandb sync" in resolution.warning


def test_online_with_key_stays_online():
    assert resolve_wandb_mode("online", KEY).mode == "online"


def test_bad_values_are_user_errors():
    with pytest.raises(UserError, match="WANDB_MODE='shared'"):
        resolve_wandb_mode("offline", {"WANDB_MODE": "shared"})
    with pytest.raises(UserError, match="logging.wandb_mode='cloud'"):
        resolve_wandb_mode("cloud", {})
