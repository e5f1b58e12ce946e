"""aggregate_sweep on a small sweep written from known numbers: summary.json against hand computation."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import ModuleType

import matplotlib.image
import pytest
from scipy import stats as scipy_stats

from biollm_core.errors import UserError
from biollm_platform.results import aggregate_sweep, print_comparison
from biollm_platform.results.metrics import DEFAULT_METRICS

T_975_DF4 = 2.776445  # Student t quantile, two-sided 95%, 4 degrees of freedom (tables)
T_975_DF3 = 3.182446


def document(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "comparison" / "summary.json").read_text())


def metrics_of(summary: dict, treatment: str) -> dict:
    [comparison] = [c for c in summary["comparisons"] if c["treatment"] == treatment]
    return comparison["metrics"]


def test_summary_matches_hand_computation(toy_sweep: Path) -> None:
    result = aggregate_sweep(toy_sweep, plots=False)  # plots: see test_writes_csv_report_and_plots
    summary = document(toy_sweep)
    assert (summary["axis"], summary["control"], summary["treatments"]) == ("method", "nosleep", ["cls", "er"])
    assert summary["n_pairs"] == 10 and summary["n_trials"] == 15
    assert summary["unpaired"] == [] and summary["failed"] == [] and summary["problems"] == []
    assert summary["statistics"]["multiple_comparisons"] == "holm"
    cls = metrics_of(summary, "cls")
    assert list(cls) == [m for m in DEFAULT_METRICS if m in cls]

    # final_seen_acc_avg: cls - nosleep = (0.6, 0.8, 0.7, 0.7, 0.7): mean 0.7, sd sqrt(0.02 / 4)
    acc = cls["final_seen_acc_avg"]
    sd = math.sqrt(0.02 / 4)
    assert acc["n"] == 5 and acc["better"] == "higher"
    assert acc["control_mean"] == pytest.approx(0.25) and acc["treatment_mean"] == pytest.approx(0.95)
    assert acc["deltas"] == pytest.approx([0.7, 0.6, 0.7, 0.8, 0.7])  # pairs in seed order 5, 7, 11, 42, 123
    assert acc["mean_delta"] == pytest.approx(0.7) and acc["sd_delta"] == pytest.approx(sd)
    half_width = T_975_DF4 * sd / math.sqrt(5)
    assert acc["t_ci"] == pytest.approx([0.7 - half_width, 0.7 + half_width], abs=1e-6)
    t = 0.7 / (sd / math.sqrt(5))
    assert acc["t_p_value"] == pytest.approx(2 * scipy_stats.t.sf(t, 4), rel=1e-9)
    # every delta positive: only the identity and the all-flipped pattern reach |mean| 0.7 -> 2/32
    assert acc["p_value"] == 0.0625 and acc["min_attainable_p"] == 0.0625
    assert acc["p_value_method"] == "exact (32 sign flips)"
    assert acc["d_z"] == pytest.approx(0.7 / sd)
    low, high = acc["bootstrap_ci"]
    assert 0.6 <= low < 0.7 < high <= 0.8

    # anytime_acc: (0.1, 0.2, -0.1, 0.1, 0.2): |signed sums| >= 0.5 in 8 of 32 patterns
    anytime = cls["anytime_acc"]
    assert anytime["mean_delta"] == pytest.approx(0.1) and anytime["sd_delta"] == pytest.approx(math.sqrt(0.06 / 4))
    assert anytime["p_value"] == 0.25

    # avg_incremental_acc: every delta exactly 0.25 -> sd 0, d_z infinite (the string "inf"), t-test p 0
    incremental = cls["avg_incremental_acc"]
    assert incremental["sd_delta"] == 0.0 and incremental["d_z"] == "inf" and incremental["t_ci"] == [0.25, 0.25]
    assert incremental["t_p_value"] == 0.0

    # final_forgetting: lower is better; deltas (-0.6, -0.7, -0.5, -0.6, -0.6)
    forgetting = cls["final_forgetting"]
    assert forgetting["mean_delta"] == pytest.approx(-0.6) and forgetting["favours"] == "treatment"
    assert result.comparisons[0].stats.mean == pytest.approx(0.7)


def test_holm_adjustment_and_verdicts_in_words(toy_sweep: Path) -> None:
    aggregate_sweep(toy_sweep, plots=False)
    summary = document(toy_sweep)
    cls, er = metrics_of(summary, "cls")["final_seen_acc_avg"], metrics_of(summary, "er")["final_seen_acc_avg"]
    # er - nosleep = (0.05, 0, 0.05, 0, 0): mean 0.02, sd sqrt(0.00075)
    assert er["mean_delta"] == pytest.approx(0.02) and er["sd_delta"] == pytest.approx(math.sqrt(0.00075))
    # Holm over the metric's family of 2: the smaller p doubled, the larger kept (never below the first)
    assert cls["family_size"] == er["family_size"] == 2
    assert cls["t_p_holm"] == pytest.approx(2 * cls["t_p_value"])
    assert er["t_p_holm"] == pytest.approx(max(er["t_p_value"], 2 * cls["t_p_value"]))
    assert cls["p_value_holm"] == pytest.approx(min(1.0, 2 * 0.0625))
    assert (cls["significant"], cls["favours"]) == (True, "treatment")
    assert (er["significant"], er["favours"]) == (False, "not significant")  # p ~ 0.18
    assert metrics_of(summary, "er")["anytime_acc"]["favours"] == "not significant"  # every delta 0
    report = (toy_sweep / "comparison" / "report.md").read_text()
    assert "**Holm-adjusted**" in report and "**cls better**" in report and "**not significant**" in report


def test_fewer_than_five_pairs_make_no_claim(tmp_path: Path, factory: ModuleType) -> None:
    sweep_dir = factory.build_sweep(tmp_path, seeds=(7, 42, 123), methods=("cls", "nosleep"))
    result = aggregate_sweep(sweep_dir, plots=False)
    acc = next(c for c in result.comparisons if c.metric.name == "final_seen_acc_avg")
    assert acc.stats.n == 3 and acc.stats.t_p_value < 0.05  # a large effect, but three seeds
    assert not acc.significant and acc.favours == "not significant"
    assert not result.multiple  # one treatment: no adjustment
    report = (sweep_dir / "comparison" / "report.md").read_text()
    assert "not significant (n = 3 < 5: no claim)" in report and "cannot give p below 2/2^3 = 0.25" in report


def test_leaderboard_ranks_every_method_with_cis(toy_sweep: Path) -> None:
    result = aggregate_sweep(toy_sweep, plots=False)
    board = result.leaderboard
    assert board.arms == ["nosleep", "cls", "er"]
    cell = board.cell((), "cls", "final_seen_acc_avg")
    assert cell.n == 5 and cell.mean == pytest.approx(0.95)
    sd = math.sqrt(((0.05) ** 2 + (0.05) ** 2) / 4)  # (0.9, 1.0, 0.95, 0.95, 0.95)
    assert cell.half_width == pytest.approx(T_975_DF4 * sd / math.sqrt(5))
    metric = next(m for m in board.metrics if m.name == "final_forgetting")
    assert board.best((), metric) == {"cls"}  # lower is better
    cost = next(m for m in board.metrics if m.name == "memory_episodes")
    assert board.best((), cost) == set()  # reported, not ranked
    rows = list(csv.DictReader((toy_sweep / "comparison" / "leaderboard.csv").open()))
    best = {(r["method"], r["metric"]) for r in rows if r["best"] == "True"}
    assert ("cls", "final_seen_acc_avg") in best and ("er", "final_seen_acc_avg") not in best
    assert "| cls | **0.95 ±" in (toy_sweep / "comparison" / "report.md").read_text()


def test_writes_csv_report_and_plots(toy_sweep: Path, factory: ModuleType) -> None:
    result = aggregate_sweep(toy_sweep)
    out = toy_sweep / "comparison"
    rows = list(csv.DictReader((out / "paired_deltas.csv").open()))
    reported = [m for m in DEFAULT_METRICS if m in factory.KNOWN]
    assert len(rows) == len(reported) * 2 * 5  # metrics x treatments x pairs
    row = next(r for r in rows if r["metric"] == "final_bwt" and r["seed"] == "7" and r["treatment"] == "cls")
    assert (row["treatment_trial"], row["control_trial"]) == ("cls-seed7", "nosleep-seed7")
    assert float(row["delta"]) == pytest.approx(0.5)
    report = (out / "report.md").read_text()
    assert "## Leaderboard" in report and "## What each metric means" in report and "![leaderboard](leaderboard.png)" in report
    plots = sorted(path.name for path in out.glob("*.png"))
    assert plots == ["accuracy_matrices.png", "curve_base_seen_acc.png", "curve_old_task_loss.png", "curve_seen_acc.png",
                     "deltas.png", "leaderboard.png", "pressure.png"]
    for name in plots:
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500, name
        assert image.std() > 0.01, f"{name} is blank"
    assert set(document(toy_sweep)["files"]) == {p.name for p in out.iterdir()}
    assert result.output_dir == out
    sleeps = next(t for t in result.sweep.trials if t.trial_id == "cls-seed7").sleep_steps
    assert sleeps[:3] == [25, 50, 75]  # sleep events read from metrics.jsonl (marked on the curves)
    cls7 = next(t for t in result.sweep.trials if t.trial_id == "cls-seed7")
    assert cls7.pressure[:2] == [(1, 0.04), (2, 0.08)] and cls7.pressure_threshold == 0.5


def test_missing_trial_is_reported_as_unpaired(tmp_path: Path, factory: ModuleType) -> None:
    sweep_dir = factory.build_sweep(tmp_path, skip=[("nosleep", 123)])
    aggregate_sweep(sweep_dir, plots=False)
    summary = document(sweep_dir)
    assert summary["n_pairs"] == 8
    unpaired = {(u["treatment"], u["trial_id"]): u["reason"] for u in summary["unpaired"]}
    assert unpaired == {("cls", "cls-seed123"): "no nosleep trial with seed=123 in the sweep",
                        ("er", "er-seed123"): "no nosleep trial with seed=123 in the sweep"}
    acc = metrics_of(summary, "cls")["final_seen_acc_avg"]  # deltas (0.6, 0.8, 0.7, 0.7)
    sd = math.sqrt(0.02 / 3)
    assert acc["n"] == 4 and acc["sd_delta"] == pytest.approx(sd)
    assert acc["t_ci"] == pytest.approx([0.7 - T_975_DF3 * sd / 2, 0.7 + T_975_DF3 * sd / 2], abs=1e-6)
    assert "cls-seed123` (vs `cls`): no nosleep trial with seed=123" in (sweep_dir / "comparison" / "report.md").read_text()


def test_corrupted_summary_is_reported_by_path_not_a_crash(toy_sweep: Path, factory: ModuleType) -> None:
    broken = toy_sweep / "nosleep-seed42" / "summary.json"
    broken.write_text("{ not json")
    factory.edit_manifest(toy_sweep, lambda m: m["trials"][0].update(state="ERROR", error="RuntimeError: boom"))
    aggregate_sweep(toy_sweep, metrics=["final_seen_acc_avg"])  # with plots: fewer pairs must plot too
    summary = document(toy_sweep)
    assert metrics_of(summary, "cls")["final_seen_acc_avg"]["n"] == 3
    [problem] = summary["problems"]
    assert problem["path"] == str(broken) and problem["message"].startswith(f"{broken}:1:3: not valid JSON")
    failed = {f["trial_id"]: f["reason"] for f in summary["failed"]}
    assert failed["cls-seed7"] == "state ERROR: RuntimeError: boom"
    assert str(broken) in failed["nosleep-seed42"]
    unpaired = {(u["treatment"], u["trial_id"]): u["reason"] for u in summary["unpaired"]}
    assert unpaired[("cls", "nosleep-seed7")] == "its cls partner cls-seed7 failed"
    assert unpaired[("cls", "cls-seed42")] == "its nosleep partner nosleep-seed42 failed"
    assert str(broken) in (toy_sweep / "comparison" / "report.md").read_text()


def test_pair_missing_a_metric_is_excluded_with_reason(toy_sweep: Path) -> None:
    path = toy_sweep / "cls-seed42" / "summary.json"
    summary = json.loads(path.read_text())
    del summary["final_bwt"]
    summary["final_forgetting"] = None
    path.write_text(json.dumps(summary))
    aggregate_sweep(toy_sweep, plots=False)
    metrics = metrics_of(document(toy_sweep), "cls")
    assert metrics["final_bwt"]["n"] == 4
    assert metrics["final_bwt"]["excluded_pairs"] == ["seed=42: cls-seed42 has no 'final_bwt'"]
    assert metrics["final_forgetting"]["n"] == 4 and metrics["final_seen_acc_avg"]["n"] == 5


def test_options_are_checked_and_one_treatment_can_be_chosen(toy_sweep: Path) -> None:
    with pytest.raises(UserError, match=r"--treatment 'clss': no trial .* values present: cls, nosleep, er"):
        aggregate_sweep(toy_sweep, treatment="clss")
    with pytest.raises(UserError, match="--pair-by 'sed'"):
        aggregate_sweep(toy_sweep, pair_by=("sed",))
    with pytest.raises(UserError, match="--axis 'mthod'"):
        aggregate_sweep(toy_sweep, axis="mthod")
    with pytest.raises(UserError, match="--metric 'final_acc': no trial's summary.json has that key"):
        aggregate_sweep(toy_sweep, metrics=["final_acc"])
    with pytest.raises(UserError, match="both 'cls'"):
        aggregate_sweep(toy_sweep, treatment="cls", control="cls")
    result = aggregate_sweep(toy_sweep, treatment="cls", control="er", metrics=["final_bwt", "sleep_count"], curve_metrics=())
    assert result.treatments == ["cls"] and not result.multiple
    assert [c.metric.name for c in result.comparisons] == ["final_bwt", "sleep_count"]
    assert result.comparisons[1].stats.n == 0  # er reports no sleeps: every pair excluded
    assert aggregate_sweep(toy_sweep, treatment="sleep", write=False).treatments == ["cls"]  # the seed's spelling


def test_any_axis_can_be_compared(tmp_path: Path, factory: ModuleType) -> None:
    sweep_dir = factory.build_sweep(tmp_path, methods=("cls",))
    factory.edit_manifest(sweep_dir, lambda m: [t["axes"].update({"experts.num_experts": 8}) for t in m["trials"]])
    wide = factory.build_sweep(tmp_path / "wide", methods=("cls",))
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    for trial in json.loads((wide / "manifest.json").read_text())["trials"]:
        trial["trial_id"] = trial["out_dir"] = trial["trial_id"] + "-experts.num_experts=16"
        trial["axes"]["experts.num_experts"] = 16
        (wide / f"{trial['trial_id'].split('-experts')[0]}").rename(sweep_dir / trial["out_dir"])
        manifest["trials"].append(trial)
    (sweep_dir / "manifest.json").write_text(json.dumps(manifest))
    result = aggregate_sweep(sweep_dir, axis="experts.num_experts", control="8", plots=False)
    assert result.treatments == [16] and result.n_pairs == 5
    assert all(c.stats.mean == pytest.approx(0.0) for c in result.comparisons if c.stats.n)  # same numbers


def test_a_sweep_written_before_methods_reads_its_modes_as_methods(tmp_path: Path, factory: ModuleType) -> None:
    sweep_dir = factory.build_sweep(tmp_path, methods=("cls", "nosleep"))
    def to_modes(manifest: dict) -> None:  # what `sweep submit` wrote before methods existed
        for trial in manifest["trials"]:
            mode = {"cls": "sleep"}.get(trial.pop("method"), "nosleep")
            trial["mode"] = trial["axes"]["mode"] = mode
            del trial["axes"]["method"]

    factory.edit_manifest(sweep_dir, to_modes)
    result = aggregate_sweep(sweep_dir, treatment="sleep", write=False)
    assert result.treatments == ["cls"] and result.n_pairs == 5


def test_print_comparison_shows_the_leaderboard_and_tables(toy_sweep: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    print_comparison(aggregate_sweep(toy_sweep, write=False), console)
    text = console.export_text()
    assert "leaderboard: method x metric" in text and "nosleep (control)" in text
    assert "Δ = cls − nosleep" in text and "5 pairs by seed" in text and "+0.7" in text and "cls better" in text
    assert "not significant" in text
    assert not (toy_sweep / "comparison").exists()


def test_a_scenario_axis_gets_a_leaderboard_of_its_own(tmp_path: Path, factory: ModuleType) -> None:
    """Split MNIST's sweeps cross methods with benchmark.scenario: each scenario is ranked (and its
    equal-memory pairs compared) on its own trials, never pooled with another scenario's."""
    from rich.console import Console

    sweep_dir = factory.build_sweep(tmp_path, methods=("cls", "er"))
    factory.edit_manifest(sweep_dir, lambda m: [t["axes"].update({"benchmark.scenario": "task"}) for t in m["trials"]])
    other = factory.build_sweep(tmp_path / "other", methods=("cls", "er"))
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    for trial in json.loads((other / "manifest.json").read_text())["trials"]:
        name = trial["out_dir"]
        summary_path = other / name / "summary.json"
        summary = json.loads(summary_path.read_text())
        summary["final_seen_acc_avg"] -= 0.5  # class-incremental: lower, by a known amount
        summary_path.write_text(json.dumps(summary))
        trial["trial_id"] = trial["out_dir"] = f"{name}-benchmark.scenario=class"
        trial["axes"]["benchmark.scenario"] = "class"
        (other / name).rename(sweep_dir / trial["out_dir"])
        manifest["trials"].append(trial)
    (sweep_dir / "manifest.json").write_text(json.dumps(manifest))
    result = aggregate_sweep(sweep_dir, control="er", write=False)
    board = result.leaderboard
    assert [dict(c)["benchmark.scenario"] for c in board.conditions] == ["class", "task"]
    by_scenario = {dict(c)["benchmark.scenario"]: board.cell(c, "cls", "final_seen_acc_avg") for c in board.conditions}
    assert by_scenario["task"].mean == pytest.approx(0.95) and by_scenario["class"].mean == pytest.approx(0.45)
    assert by_scenario["task"].n == by_scenario["class"].n == 5
    assert result.n_pairs == 10 and {c.condition for c in result.comparisons} == set(board.conditions)
    console = Console(record=True, width=220)
    print_comparison(result, console, details=False)
    text = console.export_text()
    assert "benchmark.scenario=class" in text and "benchmark.scenario=task" in text
