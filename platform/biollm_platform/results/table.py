"""The comparison as a rich table in the terminal, followed by what was left out and where the files are."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from biollm_platform.results.comparison import ComparisonResult
from biollm_platform.results.pairing import Assignment, describe


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.3g}" if signed else f"{value:.3g}"


def comparison_table(result: ComparisonResult, condition: Assignment) -> Table:
    """One row per metric of ``condition``, narrow enough for an 80-column terminal.

    The bootstrap intervals and full precision are in report.md and summary.json.
    """
    n_pairs = sum(1 for pair in result.pairing.pairs if pair.condition == condition)
    level = int(round(result.settings.level * 100))
    table = Table(
        title=f"Δ = {result.treatment} − {result.control}; {describe(condition)}; {n_pairs} pairs "
        f"by {', '.join(result.pair_by)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=0,  # the box puts one space between columns: the table fits 80 columns
        show_edge=False,
        caption="↑/↓: higher/lower is better. CI: t interval. p: two-sided sign-flip permutation test.",
        caption_justify="left",
    )
    counts = {c.stats.n for c in result.comparisons if c.condition == condition}
    show_n = counts != {n_pairs}  # a metric with pairs left out: show each metric's n
    table.add_column("metric", overflow="fold")  # the one column allowed to wrap on a narrow terminal
    if show_n:
        table.add_column("n", justify="right", no_wrap=True)
    for header in (result.control, result.treatment, "Δ mean", f"{level}% CI", "p", "d_z"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("favours", no_wrap=True)
    for comparison in (c for c in result.comparisons if c.condition == condition):
        stats = comparison.stats
        favours = comparison.favours
        side = {"treatment": result.treatment, "control": result.control}.get(favours or "", favours or "n/a")
        style = {"treatment": "green", "control": "red"}.get(favours or "", "dim")
        arrow = {"higher": "↑", "lower": "↓"}.get(comparison.metric.better or "", "?")
        half_width = None if stats.t_ci is None else (stats.t_ci[1] - stats.t_ci[0]) / 2.0
        table.add_row(
            f"{comparison.metric.name} {arrow}",
            *([str(stats.n)] if show_n else []),
            _number(comparison.control_mean),
            _number(comparison.treatment_mean),
            _number(stats.mean, signed=True),
            "n/a" if half_width is None else f"±{_number(half_width)}",
            _number(stats.p_value),
            _number(stats.d_z, signed=True),
            f"[{style}]{side}[/{style}]",
        )
    return table


def print_comparison(result: ComparisonResult, console: Console | None = None) -> None:
    """The table(s), then unpaired and failed trials, file problems, and the written files."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped to a file or a log: no reason to squeeze into 80 columns
            console.width = max(console.width, 120)
    if not result.pairing.pairs:
        console.print(
            f"[bold red]No {result.treatment}/{result.control} pairs[/] "
            f"in {escape(str(result.sweep.sweep_dir))}."
        )
    for condition in result.conditions:
        console.print(comparison_table(result, condition))
    for unpaired in result.pairing.unpaired:
        console.print(
            f"[yellow]unpaired[/] {escape(unpaired.trial.trial_id)}: {escape(unpaired.reason)}",
            highlight=False,
        )
    for trial in result.failed:
        console.print(
            f"[red]failed[/] {escape(trial.trial_id)}: {escape(str(trial.failure))}", highlight=False
        )
    for problem in result.sweep.problems:
        console.print(f"[yellow]problem[/] {escape(problem.message)}", highlight=False)
    for note in result.notes:
        console.print(f"[dim]note[/] {escape(note)}", highlight=False)
    if result.output_dir is not None:
        console.print(
            f"Wrote {len(result.files)} files to {result.output_dir} (see report.md).", highlight=False
        )
