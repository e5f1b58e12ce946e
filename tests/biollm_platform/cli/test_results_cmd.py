"""`biollm results aggregate` through Typer's CliRunner, on a small sweep written to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biollm_core.errors import UserError
from biollm_platform.cli.results import app, resolve_sweep_dir


def write_sweep(root: Path, sweep_id: str = "toy-1") -> Path:
    """Two seeds x cls/nosleep with two metrics: deltas of final_seen_acc_avg are 0.5 and 0.75."""
    sweep_dir = root / sweep_id
    values = {("cls", 7): 1.0, ("nosleep", 7): 0.5, ("cls", 42): 0.875, ("nosleep", 42): 0.125}
    trials = []
    for (mode, seed), accuracy in values.items():
        out = sweep_dir / f"{mode}-seed{seed}"
        out.mkdir(parents=True)
        summary = {
            "final_seen_acc_avg": accuracy,
            "final_forgetting": 1.0 - accuracy,
            "method": mode,
            "seed": seed,
        }
        (out / "summary.json").write_text(json.dumps(summary))
        records = [
            {"step": s, "task_id": s // 5, "old_task_loss": 0.1 * s, "seen_acc": accuracy} for s in range(10)
        ]
        (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        trials.append(
            {
                "trial_id": out.name,
                "method": mode,
                "seed": seed,
                "axes": {"method": mode, "seed": seed},
                "state": "TERMINATED",
                "out_dir": out.name,
                "error": None,
            }
        )
    (sweep_dir / "manifest.json").write_text(json.dumps({"sweep_id": sweep_id, "trials": trials}))
    return sweep_dir


def test_aggregate_by_id_prints_table_and_writes_files(tmp_path: Path) -> None:
    sweep_dir = write_sweep(tmp_path / "sweeps")
    args = [
        "aggregate",
        "toy-1",
        "--root",
        str(tmp_path / "sweeps"),
        "-m",
        "final_seen_acc_avg",
        "-m",
        "final_forgetting",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 pairs by seed" in result.output
    assert "final_seen_acc_avg ↑" in result.output and "+0.625" in result.output  # mean of 0.5 and 0.75
    summary = json.loads((sweep_dir / "comparison" / "summary.json").read_text())
    assert summary["comparisons"][0]["metrics"]["final_seen_acc_avg"]["mean_delta"] == 0.625
    assert "not significant (n = 2 < 5: no claim)" in result.output
    assert (sweep_dir / "comparison" / "leaderboard.png").stat().st_size > 0


def test_aggregate_by_directory_with_swapped_roles(tmp_path: Path) -> None:
    sweep_dir = write_sweep(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "aggregate",
            str(sweep_dir),
            "--treatment",
            "nosleep",
            "--control",
            "cls",
            "-m",
            "final_seen_acc_avg",
            "--bootstrap",
            "500",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "-0.625" in result.output
    summary = json.loads((sweep_dir / "comparison" / "summary.json").read_text())
    assert summary["treatments"] == ["nosleep"] and summary["statistics"]["bootstrap_resamples"] == 500


def test_unknown_sweep_is_a_user_error_naming_both_places(tmp_path: Path) -> None:
    write_sweep(tmp_path / "sweeps", "toy-2")
    result = CliRunner().invoke(app, ["aggregate", "nope", "--root", str(tmp_path / "sweeps")])
    # The root app (cli/app.py) turns UserError into one line on stderr and exit code 2.
    assert isinstance(result.exception, UserError)
    message = str(result.exception)
    assert "\n" not in message
    assert message.startswith("sweep 'nope': no such directory, and no sweep of that id under")
    assert "toy-2" in message  # the sweeps that do exist
    with pytest.raises(UserError, match="no sweeps under"):
        resolve_sweep_dir("nope", tmp_path / "missing")


def test_bad_metric_is_a_user_error(tmp_path: Path) -> None:
    sweep_dir = write_sweep(tmp_path)
    result = CliRunner().invoke(app, ["aggregate", str(sweep_dir), "-m", "final_acc"])
    assert isinstance(result.exception, UserError)
    assert "--metric 'final_acc'" in str(result.exception)


def test_aggregate_json_is_one_object_and_no_plots_draws_nothing(tmp_path: Path) -> None:
    sweep_dir = write_sweep(tmp_path)
    result = CliRunner().invoke(app, ["aggregate", str(sweep_dir), "-m", "final_seen_acc_avg", "--json", "--no-plots"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document == json.loads((sweep_dir / "comparison" / "summary.json").read_text())
    assert document["comparisons"][0]["metrics"]["final_seen_acc_avg"]["mean_delta"] == 0.625
    assert not list((sweep_dir / "comparison").glob("*.png"))
