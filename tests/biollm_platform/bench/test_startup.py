"""`biollm bench startup`: real subprocess timings of the quick commands (no target is asserted here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_core.errors import UserError
from biollm_platform.bench.startup import median_wall_s
from biollm_platform.cli.app import app


def test_startup_json_times_every_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["bench", "startup", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for name in ("python_pass", "help", "sweep_list", "version"):
        assert data[f"{name}_s"] > 0 and len(data["times_s"][name]) == 1
    assert data["help_ratio"] == pytest.approx(data["help_s"] / data["python_pass_s"])
    assert set(data["targets_met"]) == {"help", "sweep_list"}
    assert not (tmp_path / "outputs").exists()  # `sweep list` only reads


def test_a_failing_command_is_a_user_error() -> None:
    with pytest.raises(UserError, match="exited with 3"):
        median_wall_s([sys.executable, "-c", "raise SystemExit(3)"], repeats=1)
