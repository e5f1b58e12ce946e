"""W&B inside Ray trials: one offline run per trial, also when Tune reuses one process for several trials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_platform.tracking.offline_reader import find_wandb_files, read_offline_run

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_train_local_trials_in_one_process_get_their_own_runs(train_local_sweep: tuple[Path, int, str]) -> None:
    sweep_dir, exit_code, output = train_local_sweep  # the session's train_local sweep, W&B offline
    assert exit_code == 0, output
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    runs = {}
    for trial in manifest["trials"]:
        trial_dir = sweep_dir / trial["out_dir"]
        (wandb_file,) = find_wandb_files(trial_dir)  # exactly one run, in the trial's own folder
        run = read_offline_run(wandb_file)
        summary = json.loads((trial_dir / "summary.json").read_text())
        assert (run.name, run.group, run.project) == (trial["trial_id"], manifest["sweep_id"], "biollm-test")
        assert run.state == "finished" and run.summary["final_seen_acc_avg"] == summary["final_seen_acc_avg"]
        assert run.config["method"] == {"name": trial["method"]}
        runs[trial["trial_id"]] = run.run_id
    assert len(set(runs.values())) == 2
    # one at a time, and the second trial ran in the first one's reused process
    timing = [json.loads((sweep_dir / t["out_dir"] / "ray_timing.json").read_text())[-1] for t in manifest["trials"]]
    assert timing[0]["driver_process_started_at"] == pytest.approx(timing[1]["driver_process_started_at"], abs=0.05)
