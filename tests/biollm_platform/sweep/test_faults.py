"""Faults: a worker that dies is retried from its checkpoint; an infeasible GPU request fails fast."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.sweep import app
from biollm_platform.sweep.manifest import read_manifest

from .conftest import tiny_sweep_file

pytestmark = [pytest.mark.ray]


@pytest.mark.slow
def test_dead_worker_is_retried_from_its_checkpoint(reference_run: Path) -> None:
    """reference_run injects the fault: cls-seed7's worker exits at step 7 (retries: 1)."""
    manifest = read_manifest(reference_run)
    assert {t.trial_id: (t.state, t.attempts) for t in manifest.trials} == {
        "cls-seed7": ("TERMINATED", 1),  # one Tune trial: Train restarted the worker inside it
        "nosleep-seed7": ("TERMINATED", 1),
    }
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
