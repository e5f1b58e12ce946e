"""Write a comparison to ``<sweep>/comparison/``: paired_deltas.csv, summary.json and report.md."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from biollm_platform.results.comparison import ComparisonResult, MetricComparison
from biollm_platform.results.pairing import describe

STATISTICS_DOC = {
    "delta": "treatment - control, per pair",
    "sd": "sample standard deviation of the deltas (ddof=1); null when n < 2",
    "t_ci": "mean ± t_{(1+level)/2, n-1} · sd / sqrt(n); null when n < 2",
    "bootstrap_ci": "percentile interval of the mean of seeded resamples with replacement; null when n < 2",
    "p_value": "two-sided sign-flip permutation test of mean delta = 0: exact over all 2^n sign patterns "
    "for n <= 16 (smallest attainable p = 2/2^n), seeded Monte Carlo beyond; 1.0 when n = 1",
    "d_z": "paired effect size mean / sd; null when n < 2 or 0/0, 'inf'/'-inf' when sd = 0 and mean != 0",
    "favours": "side the mean delta favours given the metric's better direction; the p-value says how "
    "surprising that delta would be if sleep made no difference",
}


def json_safe(value: Any) -> Any:
    """Infinities become the strings 'inf'/'-inf' and NaN becomes null: strict JSON, nothing lost."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def min_attainable_p(comparison: MetricComparison) -> float | None:
    stats = comparison.stats
    return 2.0 / 2**stats.n if stats.n and stats.p_value_method.startswith("exact") else None


def metric_entry(comparison: MetricComparison) -> dict[str, Any]:
    stats = comparison.stats
    return {
        "meaning": comparison.metric.meaning,
        "better": comparison.metric.better,
        "n": stats.n,
        "control_mean": comparison.control_mean,
        "treatment_mean": comparison.treatment_mean,
        "mean_delta": stats.mean,
        "sd_delta": stats.sd,
        "t_ci": list(stats.t_ci) if stats.t_ci else None,
        "bootstrap_ci": list(stats.bootstrap_ci) if stats.bootstrap_ci else None,
        "p_value": stats.p_value,
        "p_value_method": stats.p_value_method,
        "min_attainable_p": min_attainable_p(comparison),
        "d_z": stats.d_z,
        "favours": comparison.favours,
        "deltas": comparison.deltas.tolist(),
        "excluded_pairs": comparison.excluded,
    }


def summary_document(result: ComparisonResult, output_dir: Path) -> dict[str, Any]:
    settings = result.settings
    conditions = []
    for condition in result.conditions:
        pairs = [pair for pair in result.pairing.pairs if pair.condition == condition]
        conditions.append(
            {
                "condition": dict(condition),
                "label": describe(condition),
                "n_pairs": len(pairs),
                "pairs": [
                    {
                        "key": dict(p.key),
                        "treatment_trial": p.treatment.trial_id,
                        "control_trial": p.control.trial_id,
                    }
                    for p in pairs
                ],
                "metrics": {
                    c.metric.name: metric_entry(c) for c in result.comparisons if c.condition == condition
                },
            }
        )
    return json_safe(
        {
            "sweep_id": result.sweep.sweep_id,
            "sweep_name": result.sweep.name,
            "sweep_dir": str(result.sweep.sweep_dir.resolve()),
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "treatment": result.treatment,
            "control": result.control,
            "pair_by": list(result.pair_by),
            "statistics": {
                "confidence_level": settings.level,
                "bootstrap_resamples": settings.n_bootstrap,
                "seed": settings.seed,
                **STATISTICS_DOC,
            },
            "n_trials": len(result.sweep.trials),
            "n_pairs": len(result.pairing.pairs),
            "conditions": conditions,
            "unpaired": [
                {"trial_id": u.trial.trial_id, "mode": u.trial.mode, "reason": u.reason}
                for u in result.pairing.unpaired
            ],
            "failed": [
                {"trial_id": t.trial_id, "mode": t.mode, "state": t.state, "reason": t.failure}
                for t in result.failed
            ],
            "problems": [
                {"path": str(p.path), "trial_id": p.trial_id, "message": p.message}
                for p in result.sweep.problems
            ],
            "notes": result.notes,
            "files": sorted(
                str(path.relative_to(output_dir)) for path in result.files if path.is_relative_to(output_dir)
            ),
        }
    )


def write_paired_csv(result: ComparisonResult, path: Path) -> Path:
    """Long format: one row per (metric, pair), with the pair's axes, both trial ids, values and delta."""
    axes = list(dict.fromkeys(axis for pair in result.pairing.pairs for axis, _ in pair.condition + pair.key))
    columns = [
        "metric",
        *axes,
        "treatment_trial",
        "control_trial",
        "treatment_value",
        "control_value",
        "delta",
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for comparison in result.comparisons:
            for index, pair in enumerate(comparison.pairs):
                treatment_value = float(comparison.treatment_values[index])
                control_value = float(comparison.control_values[index])
                writer.writerow(
                    {
                        "metric": comparison.metric.name,
                        **dict(pair.condition + pair.key),
                        "treatment_trial": pair.treatment.trial_id,
                        "control_trial": pair.control.trial_id,
                        "treatment_value": treatment_value,
                        "control_value": control_value,
                        "delta": treatment_value - control_value,
                    }
                )
    return path


def write_summary_json(result: ComparisonResult, path: Path) -> Path:
    document = summary_document(result, path.parent)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _interval(interval: tuple[float, float] | None) -> str:
    return "n/a" if interval is None else f"[{_cell(interval[0], True)}, {_cell(interval[1], True)}]"


def markdown_table(result: ComparisonResult, condition: tuple) -> list[str]:
    level = int(round(result.settings.level * 100))
    lines = [
        f"| metric | better | n | {result.control} mean | {result.treatment} mean | Δ mean | Δ sd "
        f"| {level}% t-CI | {level}% bootstrap CI | p (sign-flip) | d_z | favours |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in (c for c in result.comparisons if c.condition == condition):
        s = c.stats
        favours = {"treatment": result.treatment, "control": result.control}.get(
            c.favours or "", c.favours or "n/a"
        )
        lines.append(
            f"| `{c.metric.name}` | {c.metric.better or '?'} | {s.n} | {_cell(c.control_mean)} "
            f"| {_cell(c.treatment_mean)} | {_cell(s.mean, True)} | {_cell(s.sd)} | {_interval(s.t_ci)} "
            f"| {_interval(s.bootstrap_ci)} | {_cell(s.p_value)} | {_cell(s.d_z, True)} | {favours} |"
        )
    return lines


def write_report_md(result: ComparisonResult, path: Path) -> Path:
    sweep = result.sweep
    n_pairs = len(result.pairing.pairs)
    lines = [
        f"# {result.treatment} vs {result.control}: sweep `{sweep.sweep_id}`",
        "",
        f"Sweep directory: `{sweep.sweep_dir}`. Trials: {len(sweep.trials)}; pairs: {n_pairs} "
        f"(paired by {', '.join(result.pair_by)} with every other axis held equal); "
        f"unpaired: {len(result.pairing.unpaired)}; failed: {len(result.failed)}.",
        "",
        f"Each delta is **{result.treatment} − {result.control}** for one pair. "
        + "p: "
        + STATISTICS_DOC["p_value"]
        + ".",
    ]
    for condition in result.conditions:
        n = sum(1 for pair in result.pairing.pairs if pair.condition == condition)
        lines += [
            "",
            f"## Condition: {describe(condition)} ({n} pairs)",
            "",
            *markdown_table(result, condition),
        ]
        if 0 < n <= 16:
            lines += [
                "",
                f"With {n} pairs the exact sign-flip test cannot give p below 2/2^{n} = {2 / 2**n:.3g}.",
            ]
        excluded = [
            f"- `{c.metric.name}`: {e}"
            for c in result.comparisons
            if c.condition == condition
            for e in c.excluded
        ]
        if excluded:
            lines += ["", "Pairs left out of a metric:", "", *excluded]
    lines += ["", "## What each metric means", ""]
    lines += [
        f"- `{c.metric.name}` ({c.metric.better or 'direction unknown'} is better): {c.metric.meaning}"
        for c in result.comparisons
        if c.condition == (result.conditions or [()])[0]
    ]
    lines += ["", "## Unpaired trials", ""]
    lines += [f"- `{u.trial.trial_id}`: {u.reason}" for u in result.pairing.unpaired] or ["None."]
    lines += ["", "## Failed or incomplete trials", ""]
    lines += [f"- `{t.trial_id}`: {t.failure}" for t in result.failed] or ["None."]
    lines += ["", "## Problems reading files", ""]
    lines += [f"- {p.message}" for p in sweep.problems] or ["None."]
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in result.notes]]
    plots = [file for file in result.files if file.suffix == ".png"]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"### {file.stem}\n\n![{file.stem}]({file.name})\n" for file in plots]
    lines += ["", "Data: [paired_deltas.csv](paired_deltas.csv), [summary.json](summary.json)."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
