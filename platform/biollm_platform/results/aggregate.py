"""Aggregate a finished (or partly finished) sweep: read, pair, compare, rank, write ``comparison/``.

Reads only files on disk: no Ray, no network. Used by ``biollm results aggregate`` and at the end of
``biollm sweep submit``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biollm_core.errors import UserError
from biollm_core.methods.registry import DEFAULT_CONTROL, SEED_MODES
from biollm_platform.results.collect import DEFAULT_CURVE_METRICS, SweepData, load_sweep
from biollm_platform.results.comparison import ComparisonResult, StatsSettings, compare_all
from biollm_platform.results.leaderboard import Leaderboard, build_leaderboard
from biollm_platform.results.metrics import DEFAULT_METRICS, LEADERBOARD_METRICS, MetricSpec, metric_spec
from biollm_platform.results.pairing import axis_values, pair_trials

COMPARISON_DIR = "comparison"
_GENERATED = ("paired_deltas.csv", "leaderboard.csv", "summary.json", "report.md", "*.png")


def _arm(value: Any, axis: str) -> Any:
    """An axis value as the trials record it: numbers given as text compare as numbers; the seed's
    sleep|nosleep name methods."""
    if axis == "method":
        return SEED_MODES.get(value, value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return value


def _arms(sweep: SweepData, axis: str, control: Any, treatment: Any | None, pair_by: Sequence[str]) -> list[Any]:
    """[control, treatments...] after checking each names something in the sweep."""
    axes = sorted({a for trial in sweep.trials for a in trial.axes})
    if sweep.trials and axis not in axes:
        raise UserError(f"--axis {axis!r}: no trial of {sweep.sweep_dir} has that axis; axes: {', '.join(axes)}")
    for name in pair_by:
        if sweep.trials and name not in axes:
            raise UserError(f"--pair-by {name!r}: no trial of {sweep.sweep_dir} has that axis; axes: {', '.join(axes)}")
        if name == axis:
            raise UserError(f"--pair-by {name!r} is the compared axis itself; pair by another axis (seed)")
    values = axis_values(sweep.trials, axis)
    shown = ", ".join(map(str, values))
    for option, value in (("--control", control), ("--treatment", treatment)):
        if value is not None and sweep.trials and value not in values:
            raise UserError(f"{option} {value!r}: no trial of {sweep.sweep_dir} has {axis}={value!r}; values present: {shown}")
    if treatment is not None and treatment == control:
        raise UserError(f"--treatment and --control are both {treatment!r}; expected two different values of {axis}")
    treatments = [treatment] if treatment is not None else [v for v in values if v != control]
    return [control, *treatments]


def _select_metrics(sweep: SweepData, names: Sequence[str] | None, notes: list[str]) -> list[MetricSpec]:
    """The metrics to compare. A default one that no summary reports is skipped with a note;
    an explicitly requested one is a UserError."""
    reported = {key for trial in sweep.trials if trial.usable for key in (trial.summary or {})}
    usable = any(trial.usable for trial in sweep.trials)
    selected = []
    for name in dict.fromkeys(names or DEFAULT_METRICS):
        if usable and name not in reported:
            if names:
                numeric = sorted(
                    key
                    for trial in sweep.trials
                    if trial.usable
                    for key, value in (trial.summary or {}).items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                )
                raise UserError(
                    f"--metric {name!r}: no trial's summary.json has that key; numeric keys: {', '.join(dict.fromkeys(numeric))}"
                )
            notes.append(f"default metric {name!r} is in no trial's summary.json; skipped")
            continue
        selected.append(metric_spec(name))
    return selected


EQUAL_MEMORY_METRICS = ("final_seen_acc_avg", "anytime_acc")


def equal_memory_groups(board: Leaderboard) -> list[list[Any]]:
    """Arms that keep the same number of episodes (more than none), in the leaderboard's order: the
    comparisons a fair claim is made from (cls against er and derpp at replay.capacity)."""
    groups: dict[tuple[Any, float], list[Any]] = {}
    for condition in board.conditions:
        for arm in board.arms:
            episodes = board.cell(condition, arm, "memory_episodes").mean
            if episodes:
                groups.setdefault((condition, episodes), []).append(arm)
    return [arms for arms in groups.values() if len(arms) > 1]


def _clear_previous(output_dir: Path) -> None:
    """Remove files an earlier aggregation wrote (a plot of a metric no longer compared would mislead)."""
    for pattern in _GENERATED:
        for path in output_dir.glob(pattern):
            path.unlink()


def file_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_comparison(result: ComparisonResult, output_dir: Path, curve_metrics: Sequence[str], plots: bool = True) -> None:
    """Write every file of the comparison into ``output_dir`` (PNGs unless ``plots`` is False)."""
    from biollm_platform.results.report import write_leaderboard_csv, write_paired_csv, write_report_md, write_summary_json

    output_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(output_dir)
    result.output_dir = output_dir
    files = result.files
    files.append(write_paired_csv(result, output_dir / "paired_deltas.csv"))
    files.append(write_leaderboard_csv(result, output_dir / "leaderboard.csv"))
    if plots:
        from biollm_platform.results.figures import write_figures  # matplotlib only when drawing

        files.extend(write_figures(result, output_dir, curve_metrics))
    # The report and summary list the files, so they are written last (summary.json lists report.md too).
    report = output_dir / "report.md"
    files.append(report)
    write_report_md(result, report)
    summary = output_dir / "summary.json"
    files.append(summary)
    write_summary_json(result, summary)


def aggregate_sweep(
    sweep_dir: Path,
    metrics: Sequence[str] | None = None,
    treatment: Any | None = None,
    control: Any = DEFAULT_CONTROL,
    pair_by: Sequence[str] = ("seed",),
    *,
    axis: str = "method",
    curve_metrics: Sequence[str] = DEFAULT_CURVE_METRICS,
    settings: StatsSettings | None = None,
    write: bool = True,
    plots: bool = True,
) -> ComparisonResult:
    """Compare every value of ``axis`` (or only ``treatment``) with ``control`` over the paired trials.

    Writes ``<sweep_dir>/comparison/`` unless ``write`` is False (without PNGs when ``plots`` is
    False). Raises UserError for a directory that is not a sweep or for options that match nothing in
    it; problems with single trials are recorded in the result instead.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir}: no such sweep directory")
    sweep = load_sweep(sweep_dir, curve_metrics)
    control = _arm(control, axis)
    treatment = None if treatment is None else _arm(treatment, axis)
    arms = _arms(sweep, axis, control, treatment, pair_by)
    notes: list[str] = []
    selected = _select_metrics(sweep, metrics, notes)
    settings = settings or StatsSettings()
    pairings = {arm: pair_trials(sweep.trials, arm, control, pair_by, axis) for arm in arms[1:]}
    comparisons = compare_all(pairings, selected, settings)
    board_metrics = [metric_spec(n) for n in dict.fromkeys([*(m.name for m in selected), *LEADERBOARD_METRICS])]
    board_metrics = [m for m in board_metrics if any(m.name in (t.summary or {}) for t in sweep.trials)]
    leaderboard = build_leaderboard(sweep.trials, axis, arms, pair_by, board_metrics, settings.level)
    result = ComparisonResult(sweep, axis, control, arms[1:], tuple(pair_by), pairings, comparisons, settings, leaderboard, notes=notes)
    memory_pairings = {(a, b): pair_trials(sweep.trials, a, b, pair_by, axis)
                       for group in equal_memory_groups(leaderboard) for a, b in itertools.combinations(group, 2)}
    headline = [m for m in selected if m.name in EQUAL_MEMORY_METRICS]
    result.equal_memory = compare_all(memory_pairings, headline, settings) if memory_pairings else []
    if write:
        write_comparison(result, sweep_dir / COMPARISON_DIR, curve_metrics, plots)
    return result
