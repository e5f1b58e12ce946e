"""`biollm data make-instructions` and `biollm data make-tiny-lm` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoModelForCausalLM
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


def test_make_tiny_lm_writes_a_loadable_model_and_says_how_to_use_it(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["make-instructions", "--out", str(tmp_path), "--per-task", "8"]).exit_code == 0
    out = tmp_path / "lm"
    args = ["make-tiny-lm", "--data", str(tmp_path / "instructions.jsonl"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--arch", "qwen2", "--vocab", "300", "--layers", "2", "--width", "16"])
    assert result.exit_code == 0, result.output
    assert "qwen2, 2 layers x width 16, 4 heads" in result.output and "tokenizer: 300 tokens" in result.output
    assert f"model.hf_model_name={out} model.hf_local_files_only=true model.vocab_size=300" in result.output
    assert AutoModelForCausalLM.from_pretrained(out, local_files_only=True).config.model_type == "qwen2"


def test_make_tiny_lm_refuses_an_unknown_architecture(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["make-tiny-lm", "--data", str(tmp_path / "x.jsonl"), "--out", str(tmp_path / "m"), "--arch", "llama"]
    )
    assert result.exit_code == 2 and "--arch" in result.output and not (tmp_path / "m").exists()
