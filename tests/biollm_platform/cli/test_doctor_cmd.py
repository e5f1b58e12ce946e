from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.app import app

runner = CliRunner()
SECRET = "wandb-secret-do-not-print-0123456789"


def test_doctor_prints_a_table_and_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "torch" in result.stdout and "ray cluster" in result.stdout and "API key set" in result.stdout
    assert SECRET not in result.output


def test_doctor_json_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9")  # the default of --address; nothing listens there
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    report = json.loads(result.stdout)
    assert set(report) == {"python", "torch", "ray", "wandb", "huggingface"}
    assert report["wandb"]["api_key_set"] is True
    cluster = report["ray"]["cluster"]
    assert cluster["address"] == "http://127.0.0.1:9" and cluster["reachable"] is False
    assert isinstance(report["torch"]["cuda_devices"], list)


def test_require_cuda_exits_1_without_cuda() -> None:
    result = runner.invoke(app, ["doctor", "--json", "--require-cuda"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["torch"]["cuda_available"] is False  # the report is still printed
    plain = runner.invoke(app, ["doctor", "--require-cuda"])
    assert plain.exit_code == 1 and "no CUDA device" in plain.output
