"""aggregate_sweep on a small sweep written from known numbers: summary.json against hand computation."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import ModuleType

import matplotlib.image
import pytest

from biollm_core.errors import UserError
from biollm_platform.results import aggregate_sweep, print_comparison
from biollm_platform.results.metrics import DEFAULT_METRICS

T_975_DF2 = 4.302653  # Student t quantile, two-sided 95%, 2 degrees of freedom (tables)
T_975_DF1 = 12.706205  # ... 1 degree of freedom


def metrics_of(sweep_dir: Path) -> dict:
    summary = json.loads((sweep_dir / "comparison" / "summary.json").read_text())
    [condition] = summary["conditions"]
    return summary, condition["metrics"]


def test_summary_matches_hand_computation(toy_sweep: Path) -> None:
    result = aggregate_sweep(toy_sweep, plots=False)  # plots: see test_writes_csv_report_and_plots
    summary, metrics = metrics_of(toy_sweep)
    assert summary["n_pairs"] == 3 and summary["n_trials"] == 6
    assert summary["unpaired"] == [] and summary["failed"] == [] and summary["problems"] == []
    assert list(metrics) == list(DEFAULT_METRICS)

    # final_seen_acc_avg: sleep (0.9, 1.0, 0.95) - nosleep (0.3, 0.2, 0.25) = (0.6, 0.8, 0.7)
    acc = metrics["final_seen_acc_avg"]
    assert acc["n"] == 3 and acc["better"] == "higher" and acc["favours"] == "treatment"
    assert acc["control_mean"] == pytest.approx(0.25) and acc["treatment_mean"] == pytest.approx(0.95)
    assert acc["deltas"] == pytest.approx([0.6, 0.8, 0.7])
    assert acc["mean_delta"] == pytest.approx(0.7) and acc["sd_delta"] == pytest.approx(0.1)
    half_width = T_975_DF2 * 0.1 / math.sqrt(3)  # 0.248414
    assert acc["t_ci"] == pytest.approx([0.7 - half_width, 0.7 + half_width], abs=1e-6)
    # Each extreme resample mean (all 0.6, all 0.8) has probability 1/27 = 3.7% > 2.5%:
    # the percentile interval is [min, max]
    assert acc["bootstrap_ci"] == pytest.approx([0.6, 0.8])
    assert acc["p_value"] == 0.25 and acc["p_value_method"] == "exact (8 sign flips)"  # 2 of 8 sign patterns
    assert acc["min_attainable_p"] == 0.25
    assert acc["d_z"] == pytest.approx(7.0)  # 0.7 / 0.1

    # final_forgetting: lower is better; deltas (-0.6, -0.7, -0.5)
    forgetting = metrics["final_forgetting"]
    assert forgetting["mean_delta"] == pytest.approx(-0.6) and forgetting["sd_delta"] == pytest.approx(0.1)
    assert forgetting["favours"] == "treatment" and forgetting["d_z"] == pytest.approx(-6.0)

    # final_bwt: deltas (0.5, -0.1, 0.2): mean 0.2, sd 0.3, |signed sums| >= 0.6 in 4 of 8 patterns
    bwt = metrics["final_bwt"]
    assert bwt["mean_delta"] == pytest.approx(0.2) and bwt["sd_delta"] == pytest.approx(0.3)
    half_width = T_975_DF2 * 0.3 / math.sqrt(3)
    assert bwt["t_ci"] == pytest.approx([0.2 - half_width, 0.2 + half_width], abs=1e-6)
    assert bwt["p_value"] == 0.5 and bwt["d_z"] == pytest.approx(2 / 3)

    # seen_acc_auc: every delta exactly 0.25 -> sd 0, d_z infinite (written as the string "inf")
    auc = metrics["seen_acc_auc"]
    assert auc["sd_delta"] == 0.0 and auc["d_z"] == "inf" and auc["t_ci"] == [0.25, 0.25]

    # the base metrics are compared too; base forgetting is higher (worse) with sleep here
    assert metrics["final_base_forgetting"]["mean_delta"] == pytest.approx(0.01)
    assert metrics["final_base_forgetting"]["favours"] == "control"
    assert result.comparisons[0].stats.mean == pytest.approx(0.7)


def test_writes_csv_report_and_plots(toy_sweep: Path, factory: ModuleType) -> None:
    result = aggregate_sweep(toy_sweep)
    out = toy_sweep / "comparison"
    rows = list(csv.DictReader((out / "paired_deltas.csv").open()))
    assert len(rows) == len(DEFAULT_METRICS) * 3
    row = next(r for r in rows if r["metric"] == "final_bwt" and r["seed"] == "7")
    assert (row["treatment_trial"], row["control_trial"]) == ("sleep-seed7", "nosleep-seed7")
    assert float(row["treatment_value"]) == factory.KNOWN["final_bwt"]["sleep"][0]
    assert float(row["delta"]) == pytest.approx(0.5)

    report = (out / "report.md").read_text()
    assert "| `final_seen_acc_avg` | higher | 3 | 0.25 | 0.95 | +0.7 | 0.1 |" in report
    assert "cannot give p below 2/2^3 = 0.25" in report
    assert "## What each metric means" in report and "backward transfer" in report
    assert "![deltas](deltas.png)" in report

    plots = sorted(path.name for path in out.glob("*.png"))
    expected = ["curve_old_task_loss.png", "curve_seen_acc.png", "deltas.png"]
    expected += [f"slope_{name}.png" for name in DEFAULT_METRICS]
    assert plots == sorted(expected)
    for name in plots:
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500, name
        assert image.std() > 0.01, f"{name} is blank"
    summary, _ = metrics_of(toy_sweep)
    assert set(summary["files"]) == {p.name for p in out.iterdir()}
    assert result.output_dir == out


def test_missing_trial_is_reported_as_unpaired(tmp_path: Path, factory: ModuleType) -> None:
    sweep_dir = factory.build_sweep(tmp_path, skip=[("nosleep", 123)])
    aggregate_sweep(sweep_dir, plots=False)
    summary, metrics = metrics_of(sweep_dir)
    assert summary["n_pairs"] == 2
    assert summary["unpaired"] == [
        {
            "trial_id": "sleep-seed123",
            "mode": "sleep",
            "reason": "no nosleep trial with seed=123 in the sweep",
        }
    ]
    acc = metrics["final_seen_acc_avg"]  # deltas (0.6, 0.8): mean 0.7, sd 0.1 * sqrt(2)
    assert acc["n"] == 2 and acc["sd_delta"] == pytest.approx(0.1 * math.sqrt(2))
    assert acc["t_ci"] == pytest.approx([0.7 - T_975_DF1 * 0.1, 0.7 + T_975_DF1 * 0.1], abs=1e-5)
    assert acc["p_value"] == 0.5  # 2 of 4 sign patterns
    assert (
        "sleep-seed123`: no nosleep trial with seed=123"
        in (sweep_dir / "comparison" / "report.md").read_text()
    )


def test_corrupted_summary_is_reported_by_path_not_a_crash(toy_sweep: Path, factory: ModuleType) -> None:
    broken = toy_sweep / "nosleep-seed42" / "summary.json"
    broken.write_text("{ not json")
    factory.edit_manifest(
        toy_sweep, lambda m: m["trials"][0].update(state="ERROR", error="RuntimeError: boom")
    )
    aggregate_sweep(toy_sweep, metrics=["final_seen_acc_avg"])  # with plots: a single pair must plot too
    summary, metrics = metrics_of(toy_sweep)
    assert summary["n_pairs"] == 1 and metrics["final_seen_acc_avg"]["n"] == 1
    assert metrics["final_seen_acc_avg"]["sd_delta"] is None and metrics["final_seen_acc_avg"]["d_z"] is None
    [problem] = summary["problems"]
    assert problem["path"] == str(broken) and problem["message"].startswith(f"{broken}:1:3: not valid JSON")
    failed = {f["trial_id"]: f["reason"] for f in summary["failed"]}
    assert failed["sleep-seed7"] == "state ERROR: RuntimeError: boom"
    assert str(broken) in failed["nosleep-seed42"]
    unpaired = {u["trial_id"]: u["reason"] for u in summary["unpaired"]}
    assert unpaired == {
        "nosleep-seed7": "its sleep partner sleep-seed7 failed",
        "sleep-seed42": "its nosleep partner nosleep-seed42 failed",
    }
    assert str(broken) in (toy_sweep / "comparison" / "report.md").read_text()


def test_pair_missing_a_metric_is_excluded_with_reason(toy_sweep: Path) -> None:
    path = toy_sweep / "sleep-seed42" / "summary.json"
    summary = json.loads(path.read_text())
    del summary["final_bwt"]
    summary["final_forgetting"] = None
    path.write_text(json.dumps(summary))
    aggregate_sweep(toy_sweep, plots=False)
    _, metrics = metrics_of(toy_sweep)
    assert metrics["final_bwt"]["n"] == 2
    assert metrics["final_bwt"]["excluded_pairs"] == ["seed=42: sleep-seed42 has no 'final_bwt'"]
    assert metrics["final_forgetting"]["n"] == 2 and metrics["final_seen_acc_avg"]["n"] == 3


def test_options_are_checked_and_stale_plots_removed(toy_sweep: Path) -> None:
    with pytest.raises(UserError, match=r"--treatment 'slep': no trial .* modes present: nosleep, sleep"):
        aggregate_sweep(toy_sweep, treatment="slep")
    with pytest.raises(UserError, match="--pair-by 'sed'"):
        aggregate_sweep(toy_sweep, pair_by=("sed",))
    with pytest.raises(UserError, match="--metric 'final_acc': no trial's summary.json has that key"):
        aggregate_sweep(toy_sweep, metrics=["final_acc"])
    with pytest.raises(UserError, match="both 'sleep'"):
        aggregate_sweep(toy_sweep, control="sleep")
    aggregate_sweep(toy_sweep, metrics=["final_seen_acc_avg", "final_bwt"], curve_metrics=())
    result = aggregate_sweep(
        toy_sweep, metrics=["final_bwt", "sleep_count"], curve_metrics=()
    )  # any numeric summary key
    assert [c.metric.name for c in result.comparisons] == ["final_bwt", "sleep_count"]
    assert result.comparisons[1].metric.better is None and result.comparisons[1].favours is None
    out = toy_sweep / "comparison"
    assert sorted(p.name for p in out.glob("slope_*.png")) == ["slope_final_bwt.png", "slope_sleep_count.png"]


def test_print_comparison_shows_the_table(toy_sweep: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=120)
    print_comparison(aggregate_sweep(toy_sweep, write=False), console)
    text = console.export_text()
    assert (
        "3 pairs by seed" in text and "final_seen_acc_avg ↑" in text and "+0.7" in text and "±0.248" in text
    )
    assert not (toy_sweep / "comparison").exists()
