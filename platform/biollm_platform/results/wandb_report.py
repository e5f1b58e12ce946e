"""The W&B Report of a published sweep, built with the ``wandb-workspaces`` reports API (online only).

Sections: the statistics table (markdown from summary.json, and the analysis run's ``statistics``
table), per-method panels over the sweep's trial runs (runs grouped by ``config.method.name``: learning
curves against ``step`` and the compared summary metrics), and the delta chart (the analysis run's
``figures/*`` images).

Saving a report talks to the W&B server, so nothing here runs without the network; the tests build
the offline part of publishing only. Written against wandb-workspaces 0.4.13.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biollm_core.errors import UserError
from biollm_platform.results.publish import STATISTICS_COLUMNS, statistics_rows

CURVE_METRICS = ("seen_acc", "task_loss", "old_task_loss", "forgetting_index", "sleep_pressure")


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else ("n/a" if value is None else str(value))


def statistics_markdown(summary: dict[str, Any]) -> str:
    """The statistics table as markdown (the Report's first block)."""
    lines = ["| " + " | ".join(STATISTICS_COLUMNS) + " |", "|" + "---|" * len(STATISTICS_COLUMNS)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in statistics_rows(summary)]
    return "\n".join(lines)


def build_report(*, entity: str | None, project: str, sweep_id: str, summary: dict[str, Any]) -> str:
    """Save the Report to W&B and return its URL."""
    try:
        import wandb_workspaces.reports.v2 as wr
        from wandb_workspaces import expr
    except ImportError:
        raise UserError("the W&B Report needs the wandb-workspaces package (`uv add wandb-workspaces`); "
                        "the analysis run was published") from None
    owner = {"entity": entity} if entity else {}  # default: the API key's entity
    metrics = list(dict.fromkeys(name for comparison in summary.get("comparisons", [])
                                 for name in comparison.get("metrics", {})))
    axis = summary.get("axis", "method")
    group_key = "config.method.name" if axis == "method" else f"config.{axis}"
    trials = wr.Runset(**owner, project=project, name=f"trials of {sweep_id}", groupby=[group_key],
                       filters=[expr.Metric("Group") == sweep_id, expr.Metric("JobType") == "train"])
    analysis = wr.Runset(**owner, project=project, name=f"analysis of {sweep_id}",
                         filters=[expr.Metric("Group") == sweep_id, expr.Metric("JobType") == "analysis"])
    control = summary.get("control")
    treatments = ", ".join(map(str, summary.get("treatments", [])))
    plots = [f"figures/{Path(name).stem}" for name in summary.get("files", []) if name.endswith(".png")]
    figures = sorted(plots, key=lambda key: key != "figures/leaderboard")  # the leaderboard chart first
    by_arm = {"groupby_aggfunc": "mean", "groupby_rangefunc": "stderr"}  # the runset groups runs by the axis
    report = wr.Report(
        **owner,
        project=project,
        title=f"{axis}: {treatments} vs {control}, sweep {sweep_id}",
        description=f"Leaderboard and paired deltas against {control} over {summary.get('n_pairs')} pairs, "
                    f"published by `biollm results publish`.",
        blocks=[
            wr.H1(text="Statistics"),
            wr.MarkdownBlock(text=statistics_markdown(summary)),
            wr.PanelGrid(runsets=[analysis], panels=[
                wr.WeavePanelSummaryTable(table_name="statistics", layout=wr.Layout(w=24, h=10)),
                wr.WeavePanelSummaryTable(table_name="paired_deltas", layout=wr.Layout(w=24, h=10)),
            ]),
            wr.H1(text=f"Per {axis}"),
            wr.PanelGrid(runsets=[trials], panels=[
                *[wr.LinePlot(title=name, x="step", y=[name], **by_arm) for name in CURVE_METRICS],
                *[wr.BarPlot(title=name, metrics=[name], **by_arm) for name in metrics],
            ]),
            wr.H1(text="Deltas"),
            wr.PanelGrid(runsets=[analysis], panels=[
                wr.MediaBrowser(title="delta chart and plots", media_keys=figures, num_columns=2),
            ]),
        ],
    )
    report.save()
    return report.url
