from __future__ import annotations

import errno

import pytest
from typer.testing import CliRunner

from biollm_core.errors import UserError
from biollm_platform.cli.app import app, print_error


def test_print_error_prefixes_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    print_error(UserError("a.yaml:2: seed: bad\na.yaml:3: mode: bad [not markup]"))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: a.yaml:2: seed: bad\nerror: a.yaml:3: mode: bad [not markup]\n"


def test_print_error_names_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    print_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "data/train.jsonl"))
    assert capsys.readouterr().err == "error: file not found: data/train.jsonl\n"


def test_long_messages_are_not_wrapped(capsys: pytest.CaptureFixture[str]) -> None:
    message = "x" * 50 + " " + "y" * 200
    print_error(UserError(message))
    assert capsys.readouterr().err == f"error: {message}\n"


def test_help_lists_the_config_group_and_debug() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "config" in result.stdout and "--debug" in result.stdout
