"""Kill a sweep's driver mid-run; `biollm sweep resume` finishes only the missing trial, same figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.sweep import app
from biollm_platform.sweep.manifest import read_manifest

from .conftest import figures, tiny_sweep_file

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _wait_for(predicate, timeout_s: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _state(root: Path, trial_id: str) -> str | None:
    manifests = list((root / "sweeps").glob("*/manifest.json"))
    return read_manifest(manifests[0].parent).trial(trial_id).state if manifests else None


def test_resume_after_killed_driver(ray_cluster: str, repo_root: Path, tmp_path: Path, reference_run: Path) -> None:
    sweep_file = tiny_sweep_file(repo_root, tmp_path)
    # nosleep-seed7 blocks at step 7 (after its step-5 checkpoint) while cls-seed7 runs to the end
    env = {**os.environ, "BIOLLM_SWEEP_FAULT_PAUSE_AT": "nosleep-seed7:7"}
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "biollm_platform.cli.sweep",
            "submit",
            str(sweep_file),
            "--address",
            ray_cluster,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: any((tmp_path / "sweeps").glob("*/nosleep-seed7/.pause_injected")) and _state(tmp_path, "cls-seed7") == "TERMINATED",
            400,
            "cls-seed7 to finish while nosleep-seed7 is paused",
        )
        os.killpg(driver.pid, signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    (sweep_dir,) = (tmp_path / "sweeps").iterdir()
    before = read_manifest(sweep_dir)
    assert before.trial("cls-seed7").state == "TERMINATED"
    assert before.trial("nosleep-seed7").state == "RUNNING"
    assert not (sweep_dir / "nosleep-seed7" / "summary.json").exists()
    done_mtime = (sweep_dir / "cls-seed7" / "summary.json").stat().st_mtime_ns

    result = CliRunner().invoke(app, ["resume", sweep_dir.name, "--root", str(sweep_dir.parent), "--address", ray_cluster])
    assert result.exit_code == 0, result.output

    after = read_manifest(sweep_dir)
    assert after.status == "FINISHED"
    assert after.trial("cls-seed7").attempts == 1  # not rerun
    assert (sweep_dir / "cls-seed7" / "summary.json").stat().st_mtime_ns == done_mtime
    assert after.trial("nosleep-seed7").attempts == 2
    timing = json.loads((sweep_dir / "nosleep-seed7" / "ray_timing.json").read_text())
    assert [attempt["resumed"] for attempt in timing] == [True]  # continued from its checkpoint
    for trial in ("cls-seed7", "nosleep-seed7"):
        assert figures(sweep_dir / trial) == figures(reference_run / trial)
