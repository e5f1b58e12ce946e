"""`biollm data make-instructions` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from biollm_platform.cli.data import app


def test_make_instructions_writes_the_file_and_reports_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["make-instructions", "--out", str(tmp_path), "--per-task", "4", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "instructions.jsonl").read_text().splitlines()
    assert len(lines) == 8 * (4 + 32)
    assert f"wrote {tmp_path / 'instructions.jsonl'} (288 examples, seed 3)" in result.output
    assert "parity" in result.output and json.loads(lines[0])["split"] == "train"


def test_bad_count_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["make-instructions", "--out", str(tmp_path), "--per-task", "0"])
    assert result.exit_code == 2 and not (tmp_path / "instructions.jsonl").exists()
