"""`biollm results`: compare the methods (or any axis's values) of a finished sweep: leaderboard, paired
statistics against a control, tables, plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biollm_core.errors import UserError
from biollm_core.methods.registry import DEFAULT_CONTROL
from biollm_platform.results.collect import DEFAULT_CURVE_METRICS
from biollm_platform.results.metrics import DEFAULT_METRICS

# numpy, matplotlib and the statistics are imported by `aggregate` when it runs: `--help` stays fast.

DEFAULT_SWEEPS_ROOT = Path("outputs/sweeps")

app = typer.Typer(
    help="Analyse a sweep's results: a leaderboard, paired statistics against a control, plots.", no_args_is_help=True
)


@app.callback()
def _results() -> None:
    """Analyse a sweep's results: a leaderboard, paired statistics against a control, plots."""
    # A callback keeps `results` a command group even while it has one command (`publish` joins it).


def resolve_sweep_dir(sweep: str, root: Path) -> Path:
    """A directory path as given, else the sweep id under ``root``; UserError when neither exists."""
    as_path = Path(sweep)
    if as_path.is_dir():
        return as_path
    under_root = root / sweep
    if under_root.is_dir():
        return under_root
    known = (
        sorted((p.name for p in root.iterdir() if (p / "manifest.json").is_file()), reverse=True)
        if root.is_dir()
        else []
    )
    hint = f"sweeps under {root}: {', '.join(known[:10])}" if known else f"no sweeps under {root}"
    raise UserError(f"sweep {sweep!r}: no such directory, and no sweep of that id under {root} ({hint})")


@app.command()
def aggregate(
    sweep: Annotated[
        str, typer.Argument(metavar="SWEEP_ID_OR_DIR", help="Sweep directory, or a sweep id under --root.")
    ],
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help=f"summary.json key to compare; repeatable. Default: {', '.join(DEFAULT_METRICS)}.",
            show_default=False,
        ),
    ] = None,
    treatment: Annotated[
        str | None,
        typer.Option(help="Compare only this value of --axis with the control (delta = treatment - control).",
                     show_default="every other value"),
    ] = None,
    control: Annotated[str, typer.Option(help="The value of --axis every other one is compared with.")] = DEFAULT_CONTROL,
    axis: Annotated[str, typer.Option(help="The grid axis whose values are compared (method, or any config key).")] = "method",
    pair_by: Annotated[
        list[str] | None,
        typer.Option(
            "--pair-by",
            help="Axis that identifies a pair; repeatable. Every other axis is held equal.",
            show_default="seed",
        ),
    ] = None,
    curve: Annotated[
        list[str] | None,
        typer.Option(
            "--curve",
            help="metrics.jsonl key to plot over steps; repeatable.",
            show_default=", ".join(DEFAULT_CURVE_METRICS),
        ),
    ] = None,
    level: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals.")
    ] = 0.95,
    bootstrap: Annotated[int, typer.Option(min=100, help="Bootstrap resamples.")] = 10_000,
    seed: Annotated[
        int, typer.Option(help="Seed of the bootstrap (and of Monte Carlo sign flips for n > 16).")
    ] = 0,
    root: Annotated[Path, typer.Option(help="Where sweep ids are looked up.")] = DEFAULT_SWEEPS_ROOT,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the PNG plots (matplotlib).")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the comparison (comparison/summary.json's content) as one JSON object.")
    ] = False,
) -> None:
    """Rank every value of --axis (the methods) and compare each with --control, paired by seed.

    Reads the trial artifacts on disk (no Ray, no network), prints the leaderboard and the paired
    comparisons (Holm-adjusted p-values when there are several; "not significant" in words) and writes
    <sweep>/comparison/: report.md, leaderboard.csv, paired_deltas.csv, summary.json and PNG plots.
    """
    from biollm_platform.results import StatsSettings, aggregate_sweep, print_comparison

    sweep_dir = resolve_sweep_dir(sweep, root)
    _refuse_remote_record(sweep_dir)
    result = aggregate_sweep(
        sweep_dir,
        metrics=metric or None,
        treatment=treatment,
        control=control,
        pair_by=tuple(pair_by or ("seed",)),
        axis=axis,
        curve_metrics=tuple(curve or DEFAULT_CURVE_METRICS),
        settings=StatsSettings(level=level, n_bootstrap=bootstrap, seed=seed),
        plots=plots,
    )
    if as_json:
        import json

        from biollm_platform.results.report import summary_document

        typer.echo(json.dumps(summary_document(result, sweep_dir / "comparison"), allow_nan=False))
        return
    print_comparison(result)


def _refuse_remote_record(sweep_dir: Path) -> None:
    """A remote sweep's local record holds no results: say where they are instead of listing failures."""
    from biollm_platform.sweep.fetch import remote_results_hint

    if hint := remote_results_hint(sweep_dir):
        raise UserError(hint)


from biollm_platform.cli.results_publish import publish  # noqa: E402  (it imports resolve_sweep_dir from here)

app.command()(publish)
