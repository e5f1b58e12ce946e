"""Fixtures shared by the platform's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Real W&B, offline and contained: everything it writes stays under tmp_path, no credential or mode
    leaks in from the environment, and its service process is ended after the test."""
    import wandb

    home = tmp_path / "wandb-home"
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(home / name.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("NETRC", str(home / "netrc"))  # no `wandb login` key from this machine's ~/.netrc
    monkeypatch.delenv("WANDB_DIR", raising=False)  # set, it would win over the run folder (W&B convention)
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(name, raising=False)
    yield
    wandb.teardown()
