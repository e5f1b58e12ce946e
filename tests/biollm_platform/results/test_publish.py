"""`biollm results publish` offline: a real W&B analysis run, read back with W&B's own reader."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import typer  # noqa: E402
import wandb  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from biollm_core.errors import UserError  # noqa: E402
from biollm_platform.cli.results_publish import publish  # noqa: E402
from biollm_platform.results.publish import STATISTICS_COLUMNS, publish_sweep, statistics_rows  # noqa: E402
from biollm_platform.tracking.offline_reader import find_wandb_files, read_offline_run  # noqa: E402

FAKE_KEY = "0123456789abcdef" * 2 + "fedcba98"

SUMMARY = {
    "sweep_id": "toy-1", "axis": "method", "treatments": ["cls"], "control": "nosleep", "pair_by": ["seed"],
    "statistics": {"confidence_level": 0.95}, "n_trials": 4, "n_pairs": 2,
    "comparisons": [{
        "treatment": "cls", "control": "nosleep", "condition": {}, "label": "all", "n_pairs": 2,
        "metrics": {
            "final_seen_acc_avg": {"better": "higher", "n": 2, "control_mean": 0.25, "treatment_mean": 0.95,
                                   "mean_delta": 0.7, "sd_delta": 0.1, "t_ci": [-0.2, 1.6],
                                   "bootstrap_ci": [0.6, 0.8], "p_value": 0.5, "t_p_value": 0.06, "t_p_holm": 0.06,
                                   "d_z": 7.0, "favours": "not significant"},
            "avg_incremental_acc": {"better": "higher", "n": 2, "control_mean": 0.5, "treatment_mean": 0.75,
                                    "mean_delta": 0.25, "sd_delta": 0.0, "t_ci": [0.25, 0.25], "bootstrap_ci": None,
                                    "p_value": 0.5, "t_p_value": 0.0, "t_p_holm": 0.0, "d_z": "inf", "favours": "treatment"},
        },
    }],
    "files": ["deltas.png", "paired_deltas.csv"],
}
CSV = ("metric,treatment,control,seed,treatment_trial,control_trial,treatment_value,control_value,delta\n"
       "final_seen_acc_avg,cls,nosleep,7,cls-seed7,nosleep-seed7,0.9,0.3,0.6\n"
       "final_seen_acc_avg,cls,nosleep,42,cls-seed42,nosleep-seed42,1.0,0.2,0.8\n")


pytestmark = pytest.mark.usefixtures("wandb_env")  # tests/biollm_platform/conftest.py


@pytest.fixture
def fake_sweep(tmp_path: Path) -> Path:
    """A sweep directory whose comparison/ is already written (summary.json, paired_deltas.csv, a plot)."""
    sweep = tmp_path / "sweeps" / "toy-1"
    comparison = sweep / "comparison"
    comparison.mkdir(parents=True)
    (sweep / "manifest.json").write_text(json.dumps({"sweep_id": "toy-1", "trials": []}))
    (comparison / "summary.json").write_text(json.dumps(SUMMARY))
    (comparison / "paired_deltas.csv").write_text(CSV)
    plt.imsave(comparison / "deltas.png", [[0.0, 1.0], [1.0, 0.0]])
    return sweep


def _table(run_dir: Path, summary_entry: dict) -> dict:
    assert summary_entry["_type"] == "table-file"
    return json.loads((run_dir / "files" / summary_entry["path"]).read_text())


def test_statistics_rows_from_summary_json():
    rows = statistics_rows(SUMMARY)
    assert [row[:4] for row in rows] == [["cls", "nosleep", "all", "final_seen_acc_avg"], ["cls", "nosleep", "all", "avg_incremental_acc"]]
    first = dict(zip(STATISTICS_COLUMNS, rows[0], strict=True))
    assert (first["mean_delta"], first["t_ci_low"], first["t_ci_high"]) == (0.7, -0.2, 1.6)
    assert first["verdict"] == "not significant" and first["t_p_holm"] == 0.06
    second = dict(zip(STATISTICS_COLUMNS, rows[1], strict=True))
    assert second["d_z"] == float("inf") and second["bootstrap_ci_low"] is None and second["verdict"] == "cls better"


def test_publish_offline_writes_an_analysis_run(fake_sweep: Path):
    result = publish_sweep(fake_sweep, entity=None, project="biollm-test", mode="offline")
    assert result.mode == "offline" and result.report_url is None
    assert result.run_dir.is_relative_to(fake_sweep / "comparison" / "wandb")
    assert find_wandb_files(fake_sweep) == [next(result.run_dir.glob("run-*.wandb"))]
    run = read_offline_run(result.run_dir)
    assert (run.job_type, run.group, run.name, run.exit_code) == ("analysis", "toy-1", "toy-1-analysis", 0)
    assert run.config["sweep_id"] == "toy-1" and run.config["treatments"] == ["cls"] and run.config["axis"] == "method"

    statistics = _table(result.run_dir, run.summary["statistics"])
    assert statistics["columns"] == STATISTICS_COLUMNS and len(statistics["data"]) == 2
    assert statistics["data"][0][:9] == ["cls", "nosleep", "all", "final_seen_acc_avg", "higher", 2, 0.25, 0.95, 0.7]
    deltas = _table(result.run_dir, run.summary["paired_deltas"])
    assert deltas["columns"][0] == "metric" and [row[-1] for row in deltas["data"]] == [0.6, 0.8]
    image = run.summary["figures/deltas"]
    assert image["_type"] == "image-file" and (result.run_dir / "files" / image["path"]).is_file()
    assert run.summary["cls/final_seen_acc_avg/mean_delta"] == 0.7 and run.summary["n_pairs"] == 2

    (artifact,) = [a for a in run.artifacts if a.type == "analysis"]
    assert artifact.name == "comparison-toy-1"
    assert sorted(artifact.files) == ["deltas.png", "paired_deltas.csv", "summary.json"]
    staged = [Path(p) for a in run.artifacts for p in a.local_paths]
    assert staged and all(p.is_relative_to(fake_sweep) and p.is_file() for p in staged)  # self-contained
    assert not (Path(wandb.env.get_data_dir()) / "artifacts").exists()
    text = "\n".join(result.messages)
    assert "needs the network" in text and f"wandb sync {fake_sweep}/*/wandb" in text


def test_publish_aggregates_a_sweep_without_comparison(toy_sweep: Path):
    result = publish_sweep(toy_sweep, entity="lab", project="biollm-test", mode="offline")
    assert (toy_sweep / "comparison" / "summary.json").is_file()
    run = read_offline_run(result.run_dir)
    assert run.summary["cls/final_seen_acc_avg/mean_delta"] == pytest.approx(0.7)
    assert run.summary["er/final_seen_acc_avg/mean_delta"] == pytest.approx(0.02)
    assert "figures/deltas" in run.summary and "figures/leaderboard" in run.summary
    assert len(_table(result.run_dir, run.summary["paired_deltas"])["data"]) >= 3


def test_cli_offline_says_the_report_needs_the_network(fake_sweep: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)  # offline: set but unused, and never written
    app = typer.Typer()
    app.command()(publish)
    app.command("other")(lambda: None)  # two commands: `publish` is a subcommand, as under `biollm results`
    arguments = ["publish", "toy-1", "--root", str(fake_sweep.parent), "--project", "p"]
    outcome = CliRunner().invoke(app, arguments)
    assert outcome.exit_code == 0, outcome.output
    assert "The W&B Report needs the network" in outcome.output
    assert "WANDB_MODE=online biollm results publish" in outcome.output
    written = [p for p in fake_sweep.parent.parent.rglob("*") if p.is_file()]
    leaking = [p for p in written if FAKE_KEY.encode() in p.read_bytes()]
    assert leaking == []


def test_online_without_key_publishes_offline(fake_sweep: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    result = publish_sweep(fake_sweep, entity=None, project="p", mode="offline")
    assert result.mode == "offline" and result.run_dir is not None
    assert result.messages[0].startswith("warning: W&B online mode was requested (WANDB_MODE=online)")


def test_disabled_and_missing_sweep(fake_sweep: Path, tmp_path: Path):
    result = publish_sweep(fake_sweep, entity=None, project="p", mode="disabled")
    assert result.run_dir is None and not (fake_sweep / "comparison" / "wandb").exists()
    with pytest.raises(UserError, match="no manifest.json"):
        publish_sweep(tmp_path / "nowhere", entity=None, project="p")
