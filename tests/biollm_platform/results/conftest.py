"""Fixtures of the results tests: a toy sweep written by sweep_factory.py.

Tests run with --import-mode=importlib, so test directories are not on sys.path: the factory module
is loaded here by path and handed to tests through the ``factory`` fixture.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_factory() -> ModuleType:
    name = "biollm_tests_results_sweep_factory"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("sweep_factory.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # loaded once per session, like any imported module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def factory() -> ModuleType:
    """The sweep_factory module: build_sweep, edit_manifest, KNOWN, SEEDS, ..."""
    return _load_factory()


@pytest.fixture
def toy_sweep(tmp_path: Path, factory: ModuleType) -> Path:
    """The full 3-seed sleep/nosleep sweep."""
    return factory.build_sweep(tmp_path / "sweeps")
