"""Publish a sweep's comparison to W&B: one analysis run (``job_type=analysis``), and online a Report.

The analysis run is grouped with the sweep's trials and holds:

- ``statistics``: a table with one row per (treatment, condition, metric) from comparison/summary.json;
- ``paired_deltas``: comparison/paired_deltas.csv as a table;
- ``figures/<name>``: every comparison/*.png as an image (``figures/deltas`` is the delta chart);
- the headline numbers in its summary (``<metric>/mean_delta``, ``/p_value``, ``/d_z``);
- an artifact ``comparison-<sweep id>`` (type ``analysis``) with every file of comparison/.

Offline (the default, and the fallback without WANDB_API_KEY) it is written to
``<sweep>/comparison/wandb/``, beside the trials' runs, so ``wandb sync <sweep>/*/wandb`` uploads all of
them; the Report needs the network and is built by publishing again online. Files the run's
artifacts point at are staged in the same folder, never in ``~/.local/share/wandb``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biollm_core.errors import UserError
from biollm_core.redaction import redact
from biollm_platform.tracking.mode import resolve_wandb_mode

COMPARISON_DIR = "comparison"
STATISTICS_COLUMNS = ["treatment", "control", "condition", "metric", "better", "n", "control_mean", "treatment_mean",
                      "mean_delta", "sd_delta", "t_ci_low", "t_ci_high", "bootstrap_ci_low", "bootstrap_ci_high",
                      "p_value", "t_p_value", "t_p_holm", "d_z", "verdict"]


@dataclass
class PublishResult:
    """What ``publish_sweep`` did; ``messages`` are the lines the CLI prints."""

    mode: str  # the mode used: "offline", "online" or "disabled"
    sweep_id: str
    run_dir: Path | None = None  # the analysis run's folder (offline)
    run_url: str | None = None  # online
    report_url: str | None = None  # online, when the Report was built
    messages: list[str] = field(default_factory=list)


def _number(value: Any) -> float | None:
    """summary.json's numbers: floats, None, and 'inf'/'-inf' strings (strict JSON) back to floats."""
    if value in ("inf", "-inf"):
        return math.copysign(math.inf, -1.0 if value == "-inf" else 1.0)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _interval(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, list) and len(value) == 2:
        return _number(value[0]), _number(value[1])
    return None, None


def statistics_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """One row per (treatment, condition, metric) of summary.json, in ``STATISTICS_COLUMNS`` order."""
    rows = []
    for comparison in summary.get("comparisons", []):
        treatment, control = comparison.get("treatment"), comparison.get("control")
        for name, entry in comparison.get("metrics", {}).items():
            side = entry.get("favours")
            verdict = {"treatment": f"{treatment} better", "control": f"{control} better"}.get(side or "", side)
            rows.append([
                str(treatment), str(control), comparison.get("label", ""), name, entry.get("better"), entry.get("n"),
                _number(entry.get("control_mean")), _number(entry.get("treatment_mean")),
                _number(entry.get("mean_delta")), _number(entry.get("sd_delta")),
                *_interval(entry.get("t_ci")), *_interval(entry.get("bootstrap_ci")),
                _number(entry.get("p_value")), _number(entry.get("t_p_value")), _number(entry.get("t_p_holm")),
                _number(entry.get("d_z")), verdict,
            ])
    return rows


def headline_summary(summary: dict[str, Any]) -> dict[str, float | None]:
    """``<treatment>/<metric>/mean_delta``, ``/p_value``, ``/t_p_holm``, ``/d_z`` (with the condition when
    there are several)."""
    comparisons = summary.get("comparisons", [])
    values: dict[str, float | None] = {"n_pairs": _number(summary.get("n_pairs")),
                                       "n_trials": _number(summary.get("n_trials"))}
    labels = {c.get("label", "") for c in comparisons}
    for comparison in comparisons:
        prefix = f"{comparison.get('treatment')}/" + (f"{comparison.get('label', '')}/" if len(labels) > 1 else "")
        for name, entry in comparison.get("metrics", {}).items():
            for statistic in ("mean_delta", "p_value", "t_p_holm", "d_z"):
                values[f"{prefix}{name}/{statistic}"] = _number(entry.get(statistic))
    return values


def _read_csv(path: Path) -> tuple[list[str], list[list[Any]]]:
    def cell(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        columns = next(reader, [])
        return columns, [[cell(text) for text in row] for row in reader]


def _load_comparison(sweep_dir: Path) -> tuple[Path, dict[str, Any]]:
    """comparison/ with its summary.json, aggregating the sweep first when it has none."""
    comparison = sweep_dir / COMPARISON_DIR
    if not (comparison / "summary.json").is_file():
        from biollm_platform.results.aggregate import aggregate_sweep  # imports matplotlib: only when needed

        aggregate_sweep(sweep_dir)
    try:
        summary = json.loads((comparison / "summary.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{comparison / 'summary.json'}:{error.lineno}: not valid JSON ({error.msg}); "
                        "rerun `biollm results aggregate`") from None
    return comparison, summary


@contextlib.contextmanager
def _wandb_data_dir(path: Path) -> Iterator[None]:
    """Stage W&B's artifact files (tables, files) under ``path`` instead of ``~/.local/share/wandb``."""
    previous = os.environ.get("WANDB_DATA_DIR")
    os.environ["WANDB_DATA_DIR"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("WANDB_DATA_DIR", None)
        else:
            os.environ["WANDB_DATA_DIR"] = previous


def _sync_hint(sweep_dir: Path, project: str, entity: str | None) -> list[str]:
    entity_option = f" --entity {entity}" if entity else " --entity <entity>"
    return [
        "The W&B Report needs the network (W&B's reports API); it was not built.",
        "To publish later, where W&B is reachable and WANDB_API_KEY is exported:",
        f"  wandb sync {sweep_dir}/*/wandb        # the trials' runs and this analysis run",
        f"  WANDB_MODE=online biollm results publish {sweep_dir}{entity_option} --project {project}"
        "   # builds the Report",
    ]


def trial_logging_defaults(sweep_dir: Path) -> dict[str, Any]:
    """The first trial's ``logging`` section from manifest.json (project, entity, mode defaults), or {}."""
    try:
        manifest = json.loads((Path(sweep_dir) / "manifest.json").read_text(encoding="utf-8"))
        trials = manifest.get("trials") or [{}]
        return dict((trials[0].get("config") or {}).get("logging") or {})
    except (OSError, json.JSONDecodeError, AttributeError, TypeError):
        return {}


def publish_sweep(sweep_dir: Path, entity: str | None, project: str, mode: str = "offline") -> PublishResult:
    """Log the sweep's comparison as a W&B analysis run; online, also build a Report (see module doc).

    ``mode`` is resolved like a trial's (``WANDB_MODE`` overrides it; online without WANDB_API_KEY
    falls back to offline with a warning in ``messages``). Raises UserError for a missing sweep.
    """
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "manifest.json").is_file():
        raise UserError(
            f"{sweep_dir}: no manifest.json; expected a sweep directory written by `biollm sweep submit`"
        )
    comparison, summary = _load_comparison(sweep_dir)
    sweep_id = str(summary.get("sweep_id") or sweep_dir.name)
    resolution = resolve_wandb_mode(mode, os.environ, config_key="--mode")
    result = PublishResult(mode=resolution.mode, sweep_id=sweep_id)
    if resolution.warning:
        result.messages.append(f"warning: {resolution.warning}")
    if resolution.mode == "disabled":
        result.messages.append(f"W&B is disabled ({resolution.source}); nothing published. "
                               f"The comparison is in {comparison}.")
        return result

    import wandb  # about a second to import: only when publishing

    wandb_dir = comparison / "wandb"
    wandb_dir.mkdir(parents=True, exist_ok=True)
    with _wandb_data_dir(wandb_dir / "data"):
        run = wandb.init(
            project=project, entity=entity, name=f"{sweep_id}-analysis", group=sweep_id, job_type="analysis",
            dir=str(comparison), mode=resolution.mode,
            config=redact({"sweep_id": sweep_id, "axis": summary.get("axis"), "treatments": summary.get("treatments"),
                           "control": summary.get("control"), "pair_by": summary.get("pair_by"),
                           "statistics": summary.get("statistics", {})}),
            settings=wandb.Settings(console="off", reinit="create_new"),
        )
        try:
            logged: dict[str, Any] = {
                "statistics": wandb.Table(columns=STATISTICS_COLUMNS, data=statistics_rows(summary),
                                          allow_mixed_types=True),
            }
            if (comparison / "paired_deltas.csv").is_file():
                columns, rows = _read_csv(comparison / "paired_deltas.csv")
                logged["paired_deltas"] = wandb.Table(columns=columns, data=rows, allow_mixed_types=True)
            for image in sorted(comparison.glob("*.png")):
                logged[f"figures/{image.stem}"] = wandb.Image(str(image), caption=image.stem)
            run.log(logged)
            run.summary.update(headline_summary(summary))
            artifact_name = "comparison-" + re.sub(r"[^A-Za-z0-9_.-]", "-", sweep_id)  # W&B's name rules
            artifact = wandb.Artifact(artifact_name, type="analysis",
                                      description=f"{summary.get('axis')} against {summary.get('control')}: "
                                                  f"leaderboard and paired deltas of sweep {sweep_id}")
            for file in sorted(p for p in comparison.iterdir() if p.is_file()):
                artifact.add_file(str(file), name=file.name)
            run.log_artifact(artifact)
            run_url = run.url if resolution.mode == "online" else None
            run_entity = run.entity if resolution.mode == "online" else entity  # the key's default entity
            run.finish()
        except BaseException:
            run.finish(exit_code=1)
            raise
    if resolution.mode == "offline":
        result.run_dir = Path(run.dir).parent
        result.messages.append(f"Analysis run written offline to {result.run_dir}.")
        result.messages.extend(_sync_hint(sweep_dir, project, entity))
        return result
    result.run_url = run_url
    result.messages.append(f"Analysis run: {run_url}")
    from biollm_platform.results.wandb_report import build_report  # online only

    result.report_url = build_report(entity=run_entity, project=project, sweep_id=sweep_id, summary=summary)
    result.messages.append(f"Report: {result.report_url}")
    return result
