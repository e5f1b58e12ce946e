"""Shared fixtures. Keep each one small; the real Ray/W&B/HF fixtures live beside the tests that use them."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (holds pyproject.toml, biollm_core/, platform/)."""
    return REPO_ROOT
