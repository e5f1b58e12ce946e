"""`biollm train`: one run in this process, without Ray."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from biollm_core.errors import UserError
from biollm_platform.cli.config_cmd import Files, Overrides

if TYPE_CHECKING:
    from rich.table import Table

# torch and the engine are imported when `train` runs, not when the CLI starts.

SUMMARY_ROWS = (
    ("final_seen_acc_avg", "seen-task accuracy (answering model)"),
    ("anytime_acc", "anytime accuracy (answering model)"),
    ("avg_incremental_acc", "average incremental accuracy"),
    ("final_forgetting", "forgetting"),
    ("final_bwt", "backward transfer"),
    ("final_fwt", "forward transfer"),
    ("final_base_seen_acc_avg", "seen-task accuracy (neocortex alone)"),
    ("final_base_forgetting", "forgetting (neocortex alone)"),
    ("final_forgetting_index", "forgetting index (loss)"),
    ("memory_episodes", "episodes kept"),
    ("memory_bytes", "memory kept (bytes)"),
    ("trainable_params", "trainable parameters"),
    ("gradient_steps", "optimizer steps"),
    ("samples_processed", "examples processed"),
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
        if key not in summary:  # a figure of another method (sleeps, refreshes)
            continue
        value = summary.get(key)
        text = "-" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
        table.add_row(label, text)
    return table


def default_out_dir(run_name: str, digest: str) -> Path:
    """``outputs/runs/<run name>-<8 hex of the resolved config>``: another config never lands in a used directory."""
    return Path("outputs") / "runs" / f"{run_name}-{digest[:8]}"


def train(
    overrides: Overrides = None,
    files: Files = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (default outputs/runs/<run name>-<hash of the resolved config>)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint in the output directory.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (run, output directory, summary) on stdout; progress on stderr.")
    ] = False,
) -> None:
    """Train one run of a continual method in-process (`method=cls` by default): progress bar, artifacts
    in the output directory, a summary table.

    The config, the output directory and the data are checked before anything is drawn or written.
    """
    from rich.console import Console

    from biollm_core.config.loader import config_digest, load_config
    from biollm_core.output_dir import check_out_dir

    config = load_config(overrides or [], files or [])
    out_dir = out or default_out_dir(config.run_name, config_digest(config))
    try:
        check_out_dir(out_dir, resume)
    except UserError as error:
        if out is None and not resume:  # the same config ran before: say how to choose
            raise UserError(f"{error} (the default directory is unique per resolved config)") from None
        raise
    console = Console(stderr=True)
    # --json: stdout holds the final object only; anything a library prints meanwhile goes to stderr
    with _log_to_stderr(), contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        summary = _run(config, out_dir, resume=resume, quiet=quiet, console=console)
    if as_json:
        typer.echo(json.dumps({"run_name": config.run_name, "method": config.method.name, "seed": config.seed,
                               "out_dir": str(out_dir), "summary": summary}))
        return
    Console().print(summary_table(summary, f"{config.run_name} ({config.method.name})"))
    Console().print(f"artifacts: {out_dir}")


@contextlib.contextmanager
def _log_to_stderr() -> Iterator[None]:
    """INFO logs (resume notes, W&B) on stderr for the run; the root logger as it was afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.handlers, root.level = [handler], logging.INFO
    try:
        yield
    finally:
        root.handlers, root.level = saved


def _run(config: Any, out_dir: Path, *, resume: bool, quiet: bool, console: Any) -> dict[str, Any]:
    """The run with its progress bar (on ``console``); returns the summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from biollm_core.config.loader import config_to_dict
    from biollm_core.runner import Progress as RunProgress
    from biollm_core.runner import run_experiment
    from biollm_platform.tracking.sinks import DeferredSinks, platform_sinks

    # built at the first record: a run refused for its data or model leaves no W&B/TensorBoard folder
    sinks = [DeferredSinks(lambda: platform_sinks(config, out_dir=out_dir, run_config=config_to_dict(config),
                                                  run_name=config.run_name))]
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} steps/s  task {task.fields[task_no]}  sleeps {task.fields[sleeps]}"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )
    drawn: dict[str, Any] = {}  # the header and the bar appear with the first step: a run refused while
    #                             its data and model are built prints its one error line and nothing else

    def on_step(p: RunProgress) -> None:
        if not drawn:
            console.print(f"run [bold]{config.run_name}[/] -> {out_dir}")
            bar = stack.enter_context(Progress(*columns, console=console, disable=quiet, refresh_per_second=4))
            drawn.update(bar=bar, task=bar.add_task("train", total=None, rate="-", task_no="-", sleeps=0))
        bar, bar_task = drawn["bar"], drawn["task"]
        bar.update(bar_task, completed=p.step, total=p.total, task_no=p.task_id, sleeps=p.sleep_count)
        speed = bar.tasks[0].speed
        bar.update(bar_task, rate=f"{speed:.1f}" if speed else "-")

    with contextlib.ExitStack() as stack:
        try:
            summary = run_experiment(config, out_dir, sinks=sinks, resume=resume, progress=on_step)
        except OSError as error:
            raise _disk_error(error, out_dir) or error from None
    return summary


def _disk_error(error: OSError, out_dir: Path) -> UserError | None:
    """A full disk or quota as one line: what, where, and what is left to resume from."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    from biollm_core.checkpoint import latest_checkpoint

    last = latest_checkpoint(out_dir / "checkpoints")
    kept = f"the last complete checkpoint, {last}, is intact" if last else "no checkpoint was complete yet"
    return UserError(
        f"{error.strerror or os.strerror(error.errno)} while writing {error.filename or out_dir}: {kept}; "
        "free some space and rerun with --resume"
    )
