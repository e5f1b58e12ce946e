"""Ray's fixed cost per trial (biollm bench sweep) from real sweeps, and the train_local executor.

Reuses the session's reference run (train_workers); the train_local sweep must give the same figures,
since both executors run the same engine code on the same configs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_core.errors import UserError
from biollm_platform.bench.sweep import fixed_costs
from biollm_platform.sweep.schema import load_sweep

from .conftest import figures, tiny_sweep_file

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_fixed_costs_of_a_real_sweep(reference_run: Path) -> None:
    costs = fixed_costs(reference_run)
    assert set(costs) == {"cls-seed7", "nosleep-seed7"}
    for cost in costs.values():
        assert cost["start_s"] > 0 and cost["end_s"] > 0
        assert cost["total_s"] == pytest.approx(cost["start_s"] + cost["end_s"])


def test_train_local_executor_gives_the_reference_figures_longest_trial_first(
    train_local_sweep: tuple[Path, int, str], reference_run: Path
) -> None:
    sweep_dir, exit_code, output = train_local_sweep  # nosleep first in its grid, cls the longer trial
    assert exit_code == 0, output
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    assert manifest["status"] == "FINISHED"
    for trial in manifest["trials"]:
        assert trial["state"] == "TERMINATED" and trial["step"] is not None  # Tune got the reports
        assert figures(sweep_dir / trial["out_dir"]) == figures(reference_run / trial["out_dir"])
    assert set(fixed_costs(sweep_dir)) == {"cls-seed7", "nosleep-seed7"}
    started = {t["trial_id"]: t["started_at"] for t in manifest["trials"]}
    assert started["cls-seed7"] < started["nosleep-seed7"]  # one at a time, the longest expected first


def test_train_local_refuses_several_workers(repo_root: Path, clean_dir: Path) -> None:
    resources = {"workers_per_trial": 2, "executor": "train_local"}
    with pytest.raises(UserError, match="resources: .*train_local runs one worker"):
        load_sweep(tiny_sweep_file(repo_root, clean_dir, resources=resources))
