"""Aggregate a finished (or partly finished) sweep: read, pair, compare, write ``comparison/``.

Reads only files on disk: no Ray, no network. Used by ``biollm results aggregate`` and at the end of
``biollm sweep submit``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from biollm_core.errors import UserError
from biollm_platform.results.collect import DEFAULT_CURVE_METRICS, SweepData, load_sweep
from biollm_platform.results.comparison import ComparisonResult, StatsSettings, compare_metrics
from biollm_platform.results.metrics import DEFAULT_METRICS, MetricSpec, metric_spec
from biollm_platform.results.pairing import pair_trials
from biollm_platform.results.report import write_paired_csv, write_report_md, write_summary_json

COMPARISON_DIR = "comparison"
_GENERATED = ("paired_deltas.csv", "summary.json", "report.md", "deltas.png", "slope_*.png", "curve_*.png")


def _check_arguments(sweep: SweepData, treatment: str, control: str, pair_by: Sequence[str]) -> None:
    if treatment == control:
        raise UserError(f"--treatment and --control are both {treatment!r}; expected two different modes")
    modes = sorted({str(trial.mode) for trial in sweep.trials})
    for option, mode in (("--treatment", treatment), ("--control", control)):
        if sweep.trials and mode not in modes:
            raise UserError(
                f"{option} {mode!r}: no trial of {sweep.sweep_dir} has that mode; "
                f"modes present: {', '.join(modes)}"
            )
    axes = sorted({axis for trial in sweep.trials for axis in trial.axes})
    for axis in pair_by:
        if sweep.trials and axis not in axes:
            raise UserError(
                f"--pair-by {axis!r}: no trial of {sweep.sweep_dir} has that axis; axes: {', '.join(axes)}"
            )


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
                    f"--metric {name!r}: no trial's summary.json has that key; "
                    f"numeric keys: {', '.join(dict.fromkeys(numeric))}"
                )
            notes.append(f"default metric {name!r} is in no trial's summary.json; skipped")
            continue
        selected.append(metric_spec(name))
    return selected


def _clear_previous(output_dir: Path) -> None:
    """Remove files an earlier aggregation wrote (a plot of a metric no longer compared would mislead)."""
    for pattern in _GENERATED:
        for path in output_dir.glob(pattern):
            path.unlink()


def _file_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _write_plots(result: ComparisonResult, output_dir: Path, curve_metrics: Sequence[str]) -> list[Path]:
    from biollm_platform.results.plots import plot_deltas, plot_learning_curve, plot_slopes  # matplotlib: when drawing

    treatment, control = result.treatment, result.control
    written = []
    if result.comparisons:
        written.append(plot_deltas(result.comparisons, treatment, control, output_dir / "deltas.png"))
    for name in result.metric_names():
        group = [c for c in result.comparisons if c.metric.name == name]
        written.append(plot_slopes(group, treatment, control, output_dir / f"slope_{_file_slug(name)}.png"))
    condition_axes = sorted({axis for pair in result.pairing.pairs for axis, _ in pair.condition})
    usable = [trial for trial in result.sweep.trials if trial.usable]
    for name in curve_metrics:
        path = output_dir / f"curve_{_file_slug(name)}.png"
        if plot_learning_curve(usable, name, treatment, control, condition_axes, path) is None:
            result.notes.append(f"no usable trial's metrics.jsonl has {name!r}: no learning curve for it")
        else:
            written.append(path)
    return written


def write_comparison(
    result: ComparisonResult, output_dir: Path, curve_metrics: Sequence[str], plots: bool = True
) -> None:
    """Write every file of the comparison into ``output_dir`` (PNGs unless ``plots`` is False)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(output_dir)
    result.output_dir = output_dir
    files = result.files
    files.append(write_paired_csv(result, output_dir / "paired_deltas.csv"))
    if plots:
        files.extend(_write_plots(result, output_dir, curve_metrics))
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
    treatment: str = "sleep",
    control: str = "nosleep",
    pair_by: Sequence[str] = ("seed",),
    *,
    curve_metrics: Sequence[str] = DEFAULT_CURVE_METRICS,
    settings: StatsSettings | None = None,
    write: bool = True,
    plots: bool = True,
) -> ComparisonResult:
    """Compare ``treatment`` with ``control`` over the paired trials of the sweep at ``sweep_dir``.

    Writes ``<sweep_dir>/comparison/`` unless ``write`` is False (without PNGs when ``plots`` is
    False). Raises UserError for a directory
    that is not a sweep or for options that match nothing in it; problems with single trials are
    recorded in the result instead.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir}: no such sweep directory")
    sweep = load_sweep(sweep_dir, curve_metrics)
    _check_arguments(sweep, treatment, control, pair_by)
    notes: list[str] = []
    selected = _select_metrics(sweep, metrics, notes)
    settings = settings or StatsSettings()
    pairing = pair_trials(sweep.trials, treatment, control, pair_by)
    comparisons = compare_metrics(pairing, selected, settings)
    result = ComparisonResult(
        sweep, treatment, control, tuple(pair_by), pairing, comparisons, settings, notes
    )
    if write:
        write_comparison(result, sweep_dir / COMPARISON_DIR, curve_metrics, plots)
    return result
