"""ensure_bytecode: compile once per install, with a marker; nothing when Python writes bytecode itself."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from biollm_platform.sweep.bytecode import MARKER, ensure_bytecode, fingerprint


def _site(tmp_path: Path) -> Path:
    root = tmp_path / "site-packages"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (root / "pkg-1.0.dist-info").mkdir()
    return root


def test_compiles_once_then_again_after_an_install(tmp_path: Path) -> None:
    root = _site(tmp_path)
    lines: list[str] = []
    assert ensure_bytecode(lines.append, force=True, roots=[root]) is not None
    assert list((root / "pkg" / "__pycache__").glob(f"__init__.{sys.implementation.cache_tag}.pyc"))
    assert (root / MARKER).read_text().strip() == fingerprint(root) and "compiling the bytecode" in lines[0]
    assert ensure_bytecode(force=True, roots=[root]) is None  # the marker says it is done
    (root / "other-2.0.dist-info").mkdir()  # `uv sync` installed something
    assert ensure_bytecode(force=True, roots=[root]) is not None


def test_nothing_to_do_where_python_writes_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    root = _site(tmp_path)
    assert ensure_bytecode(roots=[root]) is None and not (root / MARKER).exists()
