"""`biollm results`: compare the modes of a finished sweep (paired statistics, tables, plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biollm_core.errors import UserError
from biollm_platform.results import StatsSettings, aggregate_sweep, print_comparison
from biollm_platform.results.collect import DEFAULT_CURVE_METRICS

DEFAULT_SWEEPS_ROOT = Path("outputs/sweeps")

app = typer.Typer(
    help="Analyse a sweep's results: paired sleep/nosleep statistics and plots.", no_args_is_help=True
)


@app.callback()
def _results() -> None:
    """Analyse a sweep's results: paired sleep/nosleep statistics and plots."""
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
            help="summary.json key to compare; repeatable. Default: final_seen_acc_avg, final_forgetting, "
            "final_bwt, final_forgetting_index, seen_acc_auc and their base-model versions.",
            show_default=False,
        ),
    ] = None,
    treatment: Annotated[
        str, typer.Option(help="Mode whose effect is measured (delta = treatment - control).")
    ] = "sleep",
    control: Annotated[str, typer.Option(help="Mode it is compared against.")] = "nosleep",
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
) -> None:
    """Pair the sweep's trials by seed and compare treatment with control on each metric.

    Reads the trial artifacts on disk (no Ray, no network), prints the table and writes
    <sweep>/comparison/: paired_deltas.csv, summary.json, report.md and PNG plots.
    """
    sweep_dir = resolve_sweep_dir(sweep, root)
    _refuse_remote_record(sweep_dir)
    result = aggregate_sweep(
        sweep_dir,
        metrics=metric or None,
        treatment=treatment,
        control=control,
        pair_by=tuple(pair_by or ("seed",)),
        curve_metrics=tuple(curve or DEFAULT_CURVE_METRICS),
        settings=StatsSettings(level=level, n_bootstrap=bootstrap, seed=seed),
    )
    print_comparison(result)


def _refuse_remote_record(sweep_dir: Path) -> None:
    """A remote sweep's local record holds no results: say where they are instead of listing failures."""
    from biollm_platform.sweep.fetch import remote_results_hint

    if hint := remote_results_hint(sweep_dir):
        raise UserError(hint)


from biollm_platform.cli.results_publish import publish  # noqa: E402  (it imports resolve_sweep_dir from here)

app.command()(publish)
