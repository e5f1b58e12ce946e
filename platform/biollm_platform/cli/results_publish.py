"""`biollm results publish`: the sweep's comparison as a W&B analysis run, and online a W&B Report.

Registered in cli/results.py with ``app.command()(publish)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_SWEEPS_ROOT = Path("outputs/sweeps")


def publish(
    sweep: Annotated[
        str, typer.Argument(metavar="SWEEP_ID_OR_DIR", help="Sweep directory, or a sweep id under --root.")
    ],
    entity: Annotated[
        str | None,
        typer.Option(help="W&B entity (team or user).",
                     show_default="the trials' logging.wandb_entity, else WANDB_ENTITY"),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(help="W&B project.", show_default="the trials' logging.wandb_project, else WANDB_PROJECT, else biollm-cls"),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="offline, online or disabled; WANDB_MODE overrides it; online needs WANDB_API_KEY.",
                     show_default="the trials' logging.wandb_mode, else offline"),
    ] = None,
    root: Annotated[Path, typer.Option(help="Where sweep ids are looked up.")] = DEFAULT_SWEEPS_ROOT,
) -> None:
    """Log the comparison (paired-delta table, statistics, plots) as a W&B run with job_type=analysis.

    Aggregates the sweep first if <sweep>/comparison/ has no summary.json. Offline (the default) the
    run is written to <sweep>/comparison/wandb/ and `wandb sync` uploads it later; online it is
    uploaded at once and a W&B Report (statistics, per-mode panels, delta chart) is built and its URL
    printed. The Report needs the network.
    """
    from biollm_platform.cli.results import resolve_sweep_dir  # cli.results registers this command
    from biollm_platform.results.publish import publish_sweep, trial_logging_defaults

    sweep_dir = resolve_sweep_dir(sweep, root)
    defaults = trial_logging_defaults(sweep_dir)
    result = publish_sweep(
        sweep_dir,
        entity=entity or defaults.get("wandb_entity") or os.environ.get("WANDB_ENTITY") or None,
        project=project or defaults.get("wandb_project") or os.environ.get("WANDB_PROJECT") or "biollm-cls",
        mode=mode or defaults.get("wandb_mode") or "offline",
    )
    for line in result.messages:
        typer.echo(line, err=line.startswith("warning:"))
