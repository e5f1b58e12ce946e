"""Shared fixtures. Keep each one small; the real Ray/W&B/HF fixtures live beside the tests that use them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Ray 2.60 starts local clusters with token auth; a process that first touched Ray with auth "disabled"
# then fails to start one ("Failed to start GCS ... RAY_AUTH_MODE is currently 'disabled'"). Decide it
# once, before anything imports Ray: token auth on, as a user's local Ray has it (a token is generated
# into ~/.ray/auth_token when none exists).
os.environ.setdefault("RAY_AUTH_MODE", "token")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (holds pyproject.toml, biollm_core/, platform/)."""
    return REPO_ROOT


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The test models are tiny: intra-op threads cost more than they give, and Ray's workers and W&B's
    service share the same 2 cores (a 24-step GPT-2 run took 63 s with 2 threads under load, 0.7 s with 1)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
