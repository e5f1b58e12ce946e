"""Faults: a worker that dies is retried from its checkpoint (and counted); a trial that fails for good
(here a 2-worker one) records its cause; an infeasible GPU request fails fast."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.app import app as biollm
from biollm_platform.cli.sweep import app
from biollm_platform.sweep.manifest import read_manifest

from .conftest import tiny_sweep_file

pytestmark = [pytest.mark.ray]


@pytest.mark.slow
def test_dead_worker_is_retried_from_its_checkpoint(reference_run: Path) -> None:
    """reference_run injects the fault: cls-seed7's worker exits at step 7 (retries: 1)."""
    manifest = read_manifest(reference_run)
    assert {t.trial_id: (t.state, t.attempts) for t in manifest.trials} == {
        "cls-seed7": ("TERMINATED", 2),  # one Tune trial, and Train's restart of its worker inside it
        "nosleep-seed7": ("TERMINATED", 1),
    }
    starts = [json.loads(line) for line in (reference_run / "cls-seed7" / "attempts.jsonl").read_text().splitlines()]
    assert [s["train_attempt"] for s in starts] == [1, 2] and starts[0]["driver_run"] == starts[1]["driver_run"]
    # checkpoints are stored once: in the trial's directory, none in Ray's records
    assert any((reference_run / "cls-seed7" / "checkpoints").glob("step-*/state.pt"))
    assert not list((reference_run / "_ray").rglob("checkpoint_*"))
    assert (reference_run / "cls-seed7" / ".exit_injected").read_text() == "7"
    timing = json.loads((reference_run / "cls-seed7" / "ray_timing.json").read_text())
    assert [attempt["resumed"] for attempt in timing] == [True]  # the retry continued from the step-5 checkpoint
    assert not (reference_run / "nosleep-seed7" / ".exit_injected").exists()  # the other trial unaffected
    assert json.loads((reference_run / "nosleep-seed7" / "ray_timing.json").read_text())[0]["resumed"] is False
    # same figures as an uninterrupted run: test_remote.py compares a clean run with this one


def test_gpu_request_on_cpu_cluster_fails_fast(ray_cluster: str, repo_root: Path, tmp_path: Path) -> None:
    resources = {"workers_per_trial": 1, "cpus_per_worker": 1, "gpus_per_worker": 1}
    sweep_file = tiny_sweep_file(repo_root, tmp_path, resources=resources)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["submit", str(sweep_file), "--address", ray_cluster])
    assert time.monotonic() - started < 60
    assert result.exit_code != 0
    assert "infeasible resources" in str(result.exception) and "GPU 1" in str(result.exception)
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.slow
def test_failed_trial_records_its_cause(two_worker_sweep: tuple[Path, int, str], monkeypatch) -> None:  # noqa: ANN001
    """nosleep-seed7 (2 workers) raises on rank 0 at step 3 in both of its Train attempts (retries: 1);
    cls-seed7 finishes (test_data_parallel_trial)."""
    monkeypatch.setenv("COLUMNS", "500")  # Rich folds lines at 80 columns without a terminal
    sweep_dir, exit_code, output = two_worker_sweep
    assert exit_code == 1, output
    manifest = read_manifest(sweep_dir)
    assert manifest.status == "FAILED" and manifest.trial("cls-seed7").state == "TERMINATED"
    failed = manifest.trial("nosleep-seed7")
    assert (failed.state, failed.attempts) == ("ERROR", 2)  # Train's retry counted
    assert failed.failure is not None
    assert (failed.failure.type, failed.failure.message, failed.failure.attempt) == (
        "RuntimeError", "injected fault at step 3", 2
    )
    assert failed.failure.log == str(sweep_dir / "nosleep-seed7" / "error.txt")
    assert "RuntimeError: injected fault at step 3" in Path(failed.failure.log).read_text()
    cause = f"RuntimeError: injected fault at step 3 (attempt 2; traceback in {failed.failure.log})"
    status = CliRunner().invoke(app, ["status", sweep_dir.name, "--root", str(sweep_dir.parent)])
    assert status.exit_code == 0 and f"nosleep-seed7 failed: {cause}" in status.output
    aggregate = CliRunner().invoke(biollm, ["results", "aggregate", str(sweep_dir)])
    assert f"failed nosleep-seed7: state ERROR: {cause}" in aggregate.output
