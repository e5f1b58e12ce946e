"""`biollm train`: one run in this process, without Ray."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from biollm_core.errors import UserError
from biollm_platform.cli.config_cmd import Files, Overrides

if TYPE_CHECKING:
    from rich.table import Table

# torch and the engine are imported when `train` runs, not when the CLI starts.

SUMMARY_ROWS = (
    ("final_seen_acc_avg", "seen-task accuracy (combined)"),
    ("final_forgetting", "forgetting (combined)"),
    ("final_bwt", "backward transfer (combined)"),
    ("seen_acc_auc", "seen-accuracy AUC (combined)"),
    ("final_base_seen_acc_avg", "seen-task accuracy (base)"),
    ("final_base_forgetting", "forgetting (base)"),
    ("final_forgetting_index", "forgetting index (loss)"),
    ("sleep_count", "sleeps"),
    ("refresh_count_total", "experts refreshed"),
    ("base_updates_in_sleep", "neocortex updates in sleep"),
    ("wall_time_s", "wall time (s)"),
    ("tokens_per_s", "tokens/s"),
)


def summary_table(summary: dict[str, Any], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label in SUMMARY_ROWS:
        value = summary.get(key)
        text = "-" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
        table.add_row(label, text)
    return table


def train(
    overrides: Overrides = None,
    files: Files = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default outputs/runs/<run name>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint in the output directory.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Train one CLS run in-process: progress bar, artifacts in the output directory, a summary table."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from biollm_core.config.loader import load_config
    from biollm_core.runner import Progress as RunProgress
    from biollm_core.runner import run_experiment

    config = load_config(overrides or [], files or [])
    out_dir = out or Path("outputs") / "runs" / config.run_name
    console = Console(stderr=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[logging.StreamHandler()], force=True)
    sinks = []
    if config.logging.use_wandb:
        from biollm_core.config.loader import config_to_dict
        from biollm_platform.tracking.wandb_sink import wandb_sink_from_config

        if out_dir.is_file():  # refused by the engine too; checked first so no W&B run is opened
            raise UserError(f"output directory {out_dir} exists and is a file; choose another --out")
        sink = wandb_sink_from_config(config.logging, out_dir=out_dir, run_config=config_to_dict(config), run_name=config.run_name)
        if sink is not None:
            sinks.append(sink)
    console.print(f"run [bold]{config.run_name}[/] -> {out_dir}")
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} steps/s  task {task.fields[task_no]}  sleeps {task.fields[sleeps]}"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=quiet, refresh_per_second=4) as bar:
        bar_task = bar.add_task("train", total=None, rate="-", task_no="-", sleeps=0)

        def on_step(p: RunProgress) -> None:
            bar.update(bar_task, completed=p.step, total=p.total, task_no=p.task_id, sleeps=p.sleep_count)
            speed = bar.tasks[0].speed
            bar.update(bar_task, rate=f"{speed:.1f}" if speed else "-")

        summary = run_experiment(config, out_dir, sinks=sinks, resume=resume, progress=on_step)
    Console().print(summary_table(summary, f"{config.run_name} ({config.mode})"))
    Console().print(f"artifacts: {out_dir}")
