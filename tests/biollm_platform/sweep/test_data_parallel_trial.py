"""A data-parallel trial on real Ray: 2 Train workers (gloo, 1 CPU each) against the 1-worker reference.

One sweep shows three things, to keep the suite short: the 2-worker trial's figures equal the 1-worker
reference run's (same global batch), its worker group restarts from the last checkpoint when one
worker dies (rank 1 exits at step 7; the figures are still equal), and it writes one set of artifacts
(rank 1 only its own part of each checkpoint).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_platform.cli.sweep import app
from biollm_platform.sweep.extra_sinks import SINKS_ENV
from biollm_platform.sweep.manifest import read_manifest

from .conftest import figures, tiny_sweep_file
from .fault_sink import fault_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# The accuracy-matrix and loss tolerances measured for 2 gloo ranks against 1 (see that test's comment);
# the reference trial's held-out sets are 32 sequences of 15 scored tokens, as there.
TOLERANCE, LOSS_TOLERANCE = 1 / 480 + 1e-9, 1e-4
RANK0_FILES = {"validated_config.json", "run_metadata.json", "metrics.jsonl", "summary.json", "attempts.jsonl",
               "ray_timing.json"}


def test_two_workers_match_one_and_survive_losing_one(ray_cluster: str, reference_run: Path, repo_root: Path,
                                                      tmp_path: Path) -> None:
    os.environ[SINKS_ENV] = fault_spec("cls-seed7", "exit", 7, on_rank=1)  # read at submit
    try:
        sweep_file = tiny_sweep_file(
            repo_root, tmp_path, grid={"seed": [7], "method": ["cls"]}, retries=1,
            resources={"workers_per_trial": 2, "cpus_per_worker": 1, "gpus_per_worker": 0},
        )
        result = CliRunner().invoke(app, ["submit", str(sweep_file), "--address", ray_cluster])
    finally:
        os.environ.pop(SINKS_ENV)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (tmp_path / "sweeps").iterdir()
    trial = sweep_dir / "cls-seed7"
    two, one = figures(trial), figures(reference_run / "cls-seed7")  # W=2 (one worker lost) against W=1
    assert two.keys() == one.keys()
    for name, value in one.items():
        if isinstance(value, list):  # the accuracy matrices
            difference = max(abs(a - b) for r2, r1 in zip(two[name], value, strict=True) for a, b in zip(r2, r1, strict=True))
            assert difference <= TOLERANCE, name
        elif isinstance(value, float):  # accuracies derived from them, and a loss
            assert abs(two[name] - value) <= (LOSS_TOLERANCE if name.endswith("loss") else TOLERANCE), name
        else:  # counts: steps, sleeps
            assert two[name] == value, name
    summary = json.loads((trial / "summary.json").read_text())
    assert summary["world_size"] == 2 and len(summary["rank_samples_processed"]) == 2
    assert json.loads((trial / "run_metadata.json").read_text())["world_size"] == 2
    # the group was restarted once, from the step-5 checkpoint, with both ranks
    assert (trial / ".exit_injected").read_text() == "7"
    assert [s["train_attempt"] for s in map(json.loads, (trial / "attempts.jsonl").read_text().splitlines())] == [1, 2]
    assert [a["resumed"] for a in json.loads((trial / "ray_timing.json").read_text())] == [True]
    assert read_manifest(sweep_dir).trial("cls-seed7").state == "TERMINATED"
    # one set of artifacts: rank 0's, and rank 1's own checkpoint parts (the fault's marker aside)
    files = {p.relative_to(trial).as_posix() for p in trial.rglob("*") if p.is_file()}
    top = {f for f in files if "/" not in f} - {".exit_injected"}
    assert top <= RANK0_FILES | {"error.txt"} and "summary.json" in top  # error.txt: rank 0 saw rank 1 go
    others = {f.split("/")[0] + "/" + f.split("/")[1] for f in files if "/" in f}
    assert others <= {f"checkpoints/{p.name}" for p in (trial / "checkpoints").iterdir()}
    assert any((trial / "checkpoints" / "rank-1").glob("step-*/state.pt"))
