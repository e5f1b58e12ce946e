"""What a finished sweep prints: the paired comparison, or each trial's summary figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from biollm_core.errors import UserError

from .manifest import Manifest
from .schema import SweepSpec

FIGURES = (
    "final_seen_acc_avg",
    "anytime_acc",
    "final_forgetting",
    "final_bwt",
    "final_base_seen_acc_avg",
    "memory_episodes",
    "samples_processed",
    "sleep_count",
    "wall_time_s",
)


def trial_summaries(sweep_dir: Path, manifest: Manifest) -> dict[str, dict[str, Any]]:
    """trial id -> summary.json contents, for the trials that have one."""
    out = {}
    for record in manifest.trials:
        path = sweep_dir / record.out_dir / "summary.json"
        if path.is_file():
            out[record.trial_id] = json.loads(path.read_text())
    return out


def summary_table(sweep_dir: Path, manifest: Manifest) -> Table:
    summaries = trial_summaries(sweep_dir, manifest)
    table = Table(title=f"{manifest.sweep_id}: per-trial summary")
    for column in ("trial", "state", *FIGURES):
        table.add_column(column, justify="left" if column in ("trial", "state") else "right", no_wrap=column == "trial")
    for record in manifest.trials:
        summary = summaries.get(record.trial_id, {})
        cells = [
            f"{summary[k]:.4f}" if isinstance(summary.get(k), float) else str(summary.get(k, ""))
            for k in FIGURES
        ]
        table.add_row(record.trial_id, record.state, *cells)
    return table


def print_results(sweep_dir: Path, spec: SweepSpec, manifest: Manifest, console: Console) -> None:
    """The paired comparison (biollm_platform.results) when it applies, always the per-trial table."""
    console.print(summary_table(sweep_dir, manifest))
    try:
        from biollm_platform.results import aggregate
        from biollm_platform.results.metrics import DEFAULT_METRICS
        from biollm_platform.results.table import print_comparison
    except ImportError:
        return
    compare = spec.compare
    try:
        metrics = None if compare.metric in DEFAULT_METRICS else [compare.metric, *DEFAULT_METRICS]
        result = aggregate.aggregate_sweep(
            sweep_dir, metrics, compare.treatment, compare.control, (compare.pair_by,), axis=compare.axis
        )
    except UserError as error:
        console.print(f"[yellow]no paired comparison:[/] {error}")
        return
    print_comparison(result, console, details=False)
    from biollm_platform.results.report import headline

    for line in headline(result, compare.metric):
        console.print(line.removeprefix("- ").replace("**", "").replace("`", ""), highlight=False)
