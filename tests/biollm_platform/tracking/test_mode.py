"""The effective W&B mode: config vs WANDB_MODE, and the offline fallback without an API key."""

from __future__ import annotations

from pathlib import Path

import pytest

from biollm_core.errors import UserError
from biollm_platform.tracking.mode import api_key_source, resolve_wandb_mode, run_settings

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
    ("online", {"NETRC": "/nonexistent"}, "logging.wandb_mode=online"),
    ("offline", {"WANDB_MODE": "online", "WANDB_API_KEY": " ", "NETRC": "/nonexistent"}, "WANDB_MODE=online"),
])
def test_online_without_key_falls_back_to_offline(configured: str, environ: dict, source: str):
    resolution = resolve_wandb_mode(configured, environ)
    assert (resolution.mode, resolution.requested) == ("offline", "online")
    assert source in resolution.warning and "no API key is set (WANDB_API_KEY, or `wandb login`)" in resolution.warning
    assert "wandb sync" in resolution.warning


def test_online_with_key_stays_online():
    assert resolve_wandb_mode("online", KEY).mode == "online"


def test_bad_values_are_user_errors():
    with pytest.raises(UserError, match="WANDB_MODE='shared'"):
        resolve_wandb_mode("offline", {"WANDB_MODE": "shared"})
    with pytest.raises(UserError, match="logging.wandb_mode='cloud'"):
        resolve_wandb_mode("cloud", {})


def _netrc(tmp_path: Path, host: str = "api.wandb.ai") -> str:
    path = tmp_path / "netrc"
    path.write_text(f"machine {host}\n  login user\n  password {'k' * 40}\n")  # what `wandb login` writes
    path.chmod(0o600)
    return str(path)


def test_online_with_a_netrc_key_stays_online(tmp_path: Path):
    """`wandb login` stores the key in netrc, not WANDB_API_KEY: online must stay online (doctor agrees)."""
    environ = {"NETRC": _netrc(tmp_path)}
    assert api_key_source(environ) == "netrc"
    resolution = resolve_wandb_mode("online", environ)
    assert (resolution.mode, resolution.warning) == ("online", None)


def test_netrc_key_for_another_host_or_none_at_all(tmp_path: Path):
    environ = {"NETRC": _netrc(tmp_path, host="wandb.lab.example")}
    assert api_key_source(environ) is None  # a key for another server is not W&B cloud's
    assert api_key_source({**environ, "WANDB_BASE_URL": "https://wandb.lab.example"}) == "netrc"
    assert api_key_source({"NETRC": str(tmp_path / "missing")}) is None
    assert api_key_source({"WANDB_API_KEY": "x" * 40, "NETRC": str(tmp_path / "missing")}) == "WANDB_API_KEY"


@pytest.mark.parametrize(
    ("configured", "environ", "expected"),
    [
        ({}, {}, ("biollm-cls", None, "OUT", "allow")),
        ({}, {"WANDB_PROJECT": "p-env", "WANDB_ENTITY": "lab", "WANDB_DIR": "/w", "WANDB_RESUME": "never"},
         ("p-env", "lab", "/w", "never")),
        ({"project": "p-cfg", "entity": "me", "directory": "/c", "resume": "must"},
         {"WANDB_PROJECT": "p-env", "WANDB_ENTITY": "lab", "WANDB_DIR": "/w", "WANDB_RESUME": "never"},
         ("p-cfg", "me", "/c", "must")),
    ],
    ids=["defaults", "environment-wins-over-defaults", "config-set-wins-over-environment"],
)
def test_run_settings_config_then_environment_then_defaults(configured: dict, environ: dict, expected: tuple):
    settings = run_settings(
        **{"project": None, "entity": None, "directory": None, "resume": None, **configured},
        out_dir=Path("OUT"), environ=environ,
    )
    assert (settings.project, settings.entity, settings.dir, settings.resume) == expected
