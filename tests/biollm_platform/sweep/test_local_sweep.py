"""A real tiny sweep on the session's Ray with the real engine (the `reference_run` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.sweep import app
from biollm_platform.sweep.manifest import read_manifest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_every_trial_terminates_with_its_artifacts(reference_run: Path) -> None:
    manifest = read_manifest(reference_run)
    assert manifest.status == "FINISHED"
    assert {t.trial_id: t.state for t in manifest.trials} == {
        "cls-seed7": "TERMINATED",
        "nosleep-seed7": "TERMINATED",
    }
    for trial in manifest.trials:
        trial_dir = reference_run / f"{trial.method}-seed{trial.seed}"
        assert trial.out_dir == trial_dir.name
        summary = json.loads((trial_dir / "summary.json").read_text())
        assert (summary["method"], summary["seed"], summary["steps"]) == (trial.method, 7, 20)
        lines = (trial_dir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines][-1] == 20
        assert any((trial_dir / "checkpoints").glob("step-*/state.pt"))
        assert trial.config["method"]["name"] == trial.method
        assert trial.attempts == (2 if trial.method == "cls" else 1)  # reference_run restarts cls's worker once
    assert (reference_run / "sweep.yaml").is_file()
    assert (reference_run / "comparison").is_dir()  # the paired comparison was written at the end
    assert json.loads((reference_run / "cls-seed7" / "summary.json").read_text())["sleep_count"] == 2


def test_list_and_status_report_the_sweep(reference_run: Path) -> None:
    root = str(reference_run.parent)
    listed = CliRunner().invoke(app, ["list", "--root", root, "--json"])
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.output)
    assert entry["sweep_id"] == reference_run.name and entry["counts"]["TERMINATED"] == 2
    status = CliRunner().invoke(app, ["status", reference_run.name, "--root", root, "--json"])
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["dir"] == str(reference_run)
    assert {(t["method"], t["seed"], t["state"]) for t in data["trials"]} == {
        ("cls", 7, "TERMINATED"),
        ("nosleep", 7, "TERMINATED"),
    }
    assert all(Path(t["out_dir"]).is_dir() for t in data["trials"])
