"""The sweep benchmark's parts without Ray: fixed-cost figures from a sweep directory, and the sequential
arm (real `biollm train` subprocesses) on a one-trial tiny sweep. Never its speed. The Ray arm runs in
tests/biollm_platform/sweep/test_bench_sweep.py, on the sweep tests' cluster."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from biollm_platform.bench.sweep import (
    fixed_costs,
    max_concurrent,
    run_sequential,
    summarize,
    train_command,
    trial_fixed_cost,
)
from biollm_platform.cli.app import app
from biollm_platform.sweep import bytecode
from biollm_platform.sweep.expand import expand
from biollm_platform.sweep.schema import load_sweep

SWEEPS = Path(__file__).resolve().parents[3] / "sweeps"

T0 = 1_700_000_000.0
TINY = [
    "benchmark.num_tasks=2",
    "benchmark.switch_every=5",
    "benchmark.heldout_size=16",
    "train.eval_interval=5",
    "consolidation.sleep_min_interval=5",
    "consolidation.sleep_max_interval=5",
    "consolidation.min_sleep_steps=2",
    "consolidation.max_sleep_steps=2",
    "replay.capacity=64",
    "logging.checkpoint_interval=5",
]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _fake_sweep(directory: Path) -> Path:
    """A finished sweep's manifest and ray_timing.json files with known times (trial b was retried)."""
    trials = {
        "a": ((T0, T0 + 10.0), [{"first_step_at": T0 + 4.0, "last_step_at": T0 + 9.0, "report_s": 0.5}]),
        "b": (
            (T0 + 20.0, T0 + 40.0),
            [
                {"first_step_at": T0 + 2.0, "last_step_at": T0 + 3.0},  # an earlier attempt: ignored
                {"first_step_at": T0 + 26.0, "last_step_at": T0 + 38.0},
            ],
        ),
    }
    records = []
    for trial_id, ((start, end), attempts) in trials.items():
        (directory / trial_id).mkdir(parents=True)
        (directory / trial_id / "ray_timing.json").write_text(json.dumps(attempts))
        records.append({"trial_id": trial_id, "out_dir": trial_id, "started_at": _iso(start), "ended_at": _iso(end)})
    (directory / "manifest.json").write_text(json.dumps({"trials": records}))
    return directory


def test_fixed_costs_from_manifest_and_timing(tmp_path: Path) -> None:
    costs = fixed_costs(_fake_sweep(tmp_path))
    assert costs["a"] == pytest.approx({"start_s": 4.0, "end_s": 1.0, "total_s": 5.0, "steps_s": 5.0, "report_s": 0.5}, abs=1e-3)
    assert costs["b"] == pytest.approx({"start_s": 6.0, "end_s": 2.0, "total_s": 8.0, "steps_s": 12.0, "report_s": 0.0}, abs=1e-3)
    result = summarize({"a": 3.0, "b": 5.0}, 12.0, costs, slots=2)
    assert result["sequential_s"] == 8.0 and result["ray_s"] == 12.0 and result["ratio"] == 1.5
    assert result["ray_fixed_cost_per_trial_s"] == pytest.approx(6.5, abs=1e-3)
    assert result["ray_fixed_cost_per_trial_max_s"] == pytest.approx(8.0, abs=1e-3)
    assert result["ray_fixed_cost_start_s"] == pytest.approx(5.0, abs=1e-3)
    assert result["ray_fixed_cost_end_s"] == pytest.approx(1.5, abs=1e-3)
    assert result["ray_report_s"] == pytest.approx(0.25, abs=1e-3)
    assert result["ray_wall_bound_s"] == pytest.approx(8.5, abs=1e-3)  # (5 + 12) s of steps on 2 slots
    assert result["ratio_bound"] == pytest.approx(8.5 / 8.0, abs=1e-3)


def test_max_concurrent_counts_overlapping_trials() -> None:
    def record(start: float, end: float) -> dict[str, str]:
        return {"started_at": _iso(T0 + start), "ended_at": _iso(T0 + end)}

    assert max_concurrent([record(0, 10), record(1, 5), record(5, 9), record(9.5, 12)]) == 2
    assert max_concurrent([record(0, 1), record(1, 2), record(2, 3)]) == 1  # back to back
    assert max_concurrent([record(0, 4), record(1, 4), record(2, 4)]) == 3
    assert max_concurrent([{"started_at": None, "ended_at": None}]) == 0


def test_fixed_cost_refuses_unfinished_trials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no finished attempt"):
        trial_fixed_cost({"trial_id": "a", "started_at": _iso(T0), "ended_at": None}, [{"first_step_at": T0}])
    with pytest.raises(ValueError, match="ran no step"):
        trial_fixed_cost(
            {"trial_id": "a", "started_at": _iso(T0), "ended_at": _iso(T0)}, [{"first_step_at": None, "last_step_at": None}]
        )
    (tmp_path / "manifest.json").write_text(json.dumps({"trials": [{"trial_id": "a", "out_dir": "a"}]}))
    with pytest.raises(ValueError, match="ray_timing.json is missing"):
        fixed_costs(tmp_path)


def test_sequential_arm_runs_biollm_train_per_trial(repo_root: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load((repo_root / "sweeps" / "toy_smoke.yaml").read_text())
    spec["grid"] = {"seed": [7], "method": ["nosleep"]}
    spec["base"]["overrides"] += TINY
    sweep_file = tmp_path / "tiny.yaml"
    sweep_file.write_text(yaml.safe_dump(spec))
    trials = expand(load_sweep(sweep_file), sweep_file, "bench-test")
    command = train_command(trials[0], tmp_path / "out" / "x")
    assert command[-3:] == ["--out", str(tmp_path / "out" / "x"), "--quiet"] and "train" in command
    seen: list[str] = []
    times = run_sequential(trials, tmp_path / "out", on_trial=lambda trial_id, s: seen.append(trial_id))
    assert list(times) == seen == ["nosleep-seed7"] and times["nosleep-seed7"] > 0
    summary = json.loads((tmp_path / "out" / "nosleep-seed7" / "summary.json").read_text())
    assert summary["method"] == "nosleep" and summary["seed"] == 7 and summary["steps"] > 0


def test_sequential_arm_reports_a_failing_trial(repo_root: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load((repo_root / "sweeps" / "toy_smoke.yaml").read_text())
    spec["grid"] = {"seed": [7], "method": ["nosleep"]}
    sweep_file = tmp_path / "tiny.yaml"
    sweep_file.write_text(yaml.safe_dump(spec))
    (trial,) = expand(load_sweep(sweep_file), sweep_file, "bench-test")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / trial.trial_id).write_text("a file where the run directory goes")
    with pytest.raises(RuntimeError, match="nosleep-seed7"):
        run_sequential([trial], tmp_path / "out")


def test_cli_refuses_bad_input_before_compiling_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where PYTHONDONTWRITEBYTECODE is set `bench sweep` compiles site-packages first (35 s here): a missing
    sweep file or a full --keep directory must be refused before that, not after it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "module.py").write_text("x = 1\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(bytecode, "_site_packages", lambda: [site])
    result = CliRunner().invoke(app, ["bench", "sweep", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "sweep file not found" in result.output
    full = tmp_path / "keep"
    full.mkdir()
    (full / "old").write_text("")
    result = CliRunner().invoke(app, ["bench", "sweep", str(SWEEPS / "toy_ablation.yaml"), "--keep", str(full)])
    assert result.exit_code == 2 and "is not empty" in result.output
    assert not (site / bytecode.MARKER).exists() and "compiling" not in result.output
