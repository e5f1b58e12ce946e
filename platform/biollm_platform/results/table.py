"""The comparison in the terminal: the leaderboard, each treatment's paired deltas with a verdict in
words, then what was left out and where the files are."""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from biollm_platform.results.comparison import ComparisonResult
from biollm_platform.results.pairing import Assignment, describe
from biollm_platform.results.report import arrow, verdict


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.3g}" if signed else f"{value:.3g}"


# The terminal shows these columns of the leaderboard; report.md and leaderboard.csv hold every metric.
CONSOLE_METRICS = ("final_seen_acc_avg", "anytime_acc", "final_forgetting", "final_base_seen_acc_avg",
                   "memory_episodes", "samples_processed", "wall_time_s")


def leaderboard_table(result: ComparisonResult, condition: Assignment) -> Table:
    board = result.leaderboard
    level = int(round(board.level * 100))
    table = Table(title=f"leaderboard: {result.axis} x metric{'; ' + describe(condition) if condition else ''} "
                        f"(mean ± {level}% CI half width over seeds; * best; all metrics in report.md)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    shown = [m for m in board.metrics if m.name in CONSOLE_METRICS] or board.metrics[:6]
    table.add_column(result.axis, no_wrap=True)
    for metric in shown:
        table.add_column(f"{metric.name} {arrow(metric.better)}", justify="right", no_wrap=True)
    best = {m.name: board.best(condition, m) for m in shown}
    for arm in board.arms:
        cells = []
        for metric in shown:
            c = board.cell(condition, arm, metric.name)
            text = "n/a" if c.mean is None else f"{c.mean:.3g}" + (f"±{c.half_width:.2g}" if c.half_width else "")
            cells.append(f"[bold]{text}*[/bold]" if arm in best[metric.name] else text)
        table.add_row(f"{arm} (control)" if arm == result.control else str(arm), *cells)
    return table


def comparison_table(result: ComparisonResult, treatment: Any, condition: Assignment) -> Table:
    """One row per metric of ``treatment`` - control in ``condition``."""
    level = int(round(result.settings.level * 100))
    holm = " (Holm)" if result.multiple else ""
    rows = result.of(treatment, condition)
    n_pairs = max((c.stats.n for c in rows), default=0)
    table = Table(
        title=f"Δ = {treatment} − {result.control}{'; ' + describe(condition) if condition else ''}; {n_pairs} pairs by "
        f"{', '.join(result.pair_by)}",
        title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=0, show_edge=False,
        caption=f"↑/↓: higher/lower is better. CI: {level}% t interval. p: sign-flip and paired t-test{holm}.",
        caption_justify="left",
    )
    table.add_column("metric", overflow="fold")
    for header in (str(result.control), str(treatment), "Δ mean", f"{level}% CI", "p sign", "p t", "verdict"):
        table.add_column(header, justify="right" if header != "verdict" else "left", no_wrap=True)
    for comparison in rows:
        stats = comparison.stats
        half_width = None if stats.t_ci is None else (stats.t_ci[1] - stats.t_ci[0]) / 2.0
        words = verdict(comparison, treatment, result.control)
        style = {"treatment": "blue", "control": "red"}.get(comparison.favours or "", "dim")
        table.add_row(
            f"{comparison.metric.name} {arrow(comparison.metric.better)}",
            _number(comparison.control_mean), _number(comparison.treatment_mean), _number(stats.mean, signed=True),
            "n/a" if half_width is None else f"±{_number(half_width)}",
            _number(comparison.sign_p_holm if result.multiple else stats.p_value),
            _number(comparison.t_p_holm if result.multiple else stats.t_p_value),
            f"[{style}]{escape(words)}[/{style}]",
        )
    return table


def print_comparison(result: ComparisonResult, console: Console | None = None, *, details: bool = True) -> None:
    """The leaderboard, each comparison's table (``details``), left-out trials, problems and files."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped to a file or a log: no reason to squeeze into 80 columns
            console.width = max(console.width, 160)
    if result.leaderboard is not None:
        for condition in result.leaderboard.conditions:
            console.print(leaderboard_table(result, condition))
    if result.equal_memory:
        from biollm_platform.results.report import equal_memory_lines

        console.print("[bold]At equal episodic memory[/bold]")
        for line in equal_memory_lines(result):
            console.print(escape(line.removeprefix("- ").replace("**", "").replace("`", "")), highlight=False)
    if not result.n_pairs:
        console.print(f"[bold red]No pairs of {result.axis} values with {result.control}[/] in {escape(str(result.sweep.sweep_dir))}.")
    if details:
        for treatment, pairing in result.pairings.items():
            for condition in pairing.conditions():
                console.print(comparison_table(result, treatment, condition))
    for treatment, pairing in result.pairings.items():
        for unpaired in pairing.unpaired:
            console.print(f"[yellow]unpaired[/] {escape(unpaired.trial.trial_id)} (vs {treatment}): {escape(unpaired.reason)}",
                          highlight=False)
    for trial in result.failed:
        console.print(f"[red]failed[/] {escape(trial.trial_id)}: {escape(str(trial.failure))}", highlight=False)
    for problem in result.sweep.problems:
        console.print(f"[yellow]problem[/] {escape(problem.message)}", highlight=False)
    for note in result.notes:
        console.print(f"[dim]note[/] {escape(note)}", highlight=False)
    if result.output_dir is not None:
        console.print(f"Wrote {len(result.files)} files to {result.output_dir} (see report.md).", highlight=False)
