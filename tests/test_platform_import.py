"""The repo's plain `platform/` folder must never shadow the standard library's `platform` module."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def test_platform_is_stdlib_in_the_test_process() -> None:
    assert Path(platform.__file__).resolve().parent == STDLIB
    assert platform.python_version() == ".".join(map(str, sys.version_info[:3]))


def test_platform_is_stdlib_from_the_repo_root_on_pythonpath(repo_root: Path) -> None:
    """Like a Ray worker: cwd and PYTHONPATH are the repo root."""
    code = (
        "import platform, biollm_platform; "
        "print(platform.__file__); print(platform.python_version()); print(biollm_platform.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, text=True, check=True
    )
    platform_file, version, package_file = result.stdout.splitlines()
    assert Path(platform_file).resolve().parent == STDLIB
    assert version == platform.python_version()
    assert Path(package_file).resolve() == repo_root / "platform" / "biollm_platform" / "__init__.py"
