"""Write a comparison to ``<sweep>/comparison/``: paired_deltas.csv, leaderboard.csv, summary.json, report.md."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from biollm_platform.results.comparison import MIN_PAIRS_FOR_CLAIM, ComparisonResult, MetricComparison
from biollm_platform.results.pairing import describe

STATISTICS_DOC = {
    "delta": "treatment - control, per pair (same seed, every other axis equal)",
    "sd": "sample standard deviation of the deltas (ddof=1); null when n < 2",
    "t_ci": "mean ± t_{(1+level)/2, n-1} · sd / sqrt(n); null when n < 2",
    "bootstrap_ci": "percentile interval of the mean of seeded resamples with replacement (scipy.stats.bootstrap); null when n < 2",
    "p_value": "two-sided sign-flip permutation test of mean delta = 0: exact over all 2^n sign patterns for n <= 16 "
    "(smallest attainable p = 2/2^n: 0.25 with 3 pairs, 0.0625 with 5), seeded Monte Carlo beyond; 1.0 when n = 1",
    "t_p_value": "two-sided paired t-test of mean delta = 0 (scipy.stats.ttest_1samp on the deltas); null when n < 2",
    "holm": "with more than one comparison of a metric (several treatments or conditions), both p-values are "
    "Holm-adjusted within that metric's family",
    "favours": "the side the mean delta favours, only with at least 5 pairs (5 seeds for a claim) and a "
    "(Holm-adjusted) paired t-test p below 1 - level; 'not significant' otherwise",
    "d_z": "paired effect size mean / sd; null when n < 2 or 0/0, 'inf'/'-inf' when sd = 0 and mean != 0",
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
        "t_p_value": stats.t_p_value,
        "t_p_holm": comparison.t_p_holm,
        "p_value_holm": comparison.sign_p_holm,
        "family_size": comparison.family_size,
        "significant": comparison.significant,
        "d_z": stats.d_z,
        "favours": comparison.favours,
        "deltas": comparison.deltas.tolist(),
        "excluded_pairs": comparison.excluded,
    }


def leaderboard_document(result: ComparisonResult) -> list[dict[str, Any]]:
    board = result.leaderboard
    rows = []
    for condition in board.conditions:
        best = {m.name: board.best(condition, m) for m in board.metrics}
        for arm in board.arms:
            cells = {}
            for metric in board.metrics:
                cell = board.cell(condition, arm, metric.name)
                cells[metric.name] = {"n": cell.n, "mean": cell.mean, "ci_half_width": cell.half_width, "best": arm in best[metric.name]}
            rows.append({"condition": dict(condition), result.axis: arm, "metrics": cells})
    return rows


def summary_document(result: ComparisonResult, output_dir: Path) -> dict[str, Any]:
    settings = result.settings
    comparisons = []
    for treatment, pairing in result.pairings.items():
        for condition in pairing.conditions():
            pairs = [pair for pair in pairing.pairs if pair.condition == condition]
            comparisons.append({
                "treatment": treatment,
                "control": result.control,
                "condition": dict(condition),
                "label": describe(condition),
                "n_pairs": len(pairs),
                "pairs": [{"key": dict(p.key), "treatment_trial": p.treatment.trial_id, "control_trial": p.control.trial_id}
                          for p in pairs],
                "metrics": {c.metric.name: metric_entry(c) for c in result.of(treatment, condition)},
            })
    unpaired = [
        {"treatment": t, "trial_id": u.trial.trial_id, result.axis: u.trial.axes.get(result.axis), "reason": u.reason}
        for t, pairing in result.pairings.items()
        for u in pairing.unpaired
    ]
    return json_safe({
        "sweep_id": result.sweep.sweep_id,
        "sweep_name": result.sweep.name,
        "sweep_dir": str(result.sweep.sweep_dir.resolve()),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "axis": result.axis,
        "control": result.control,
        "treatments": result.treatments,
        "pair_by": list(result.pair_by),
        "statistics": {"confidence_level": settings.level, "bootstrap_resamples": settings.n_bootstrap, "seed": settings.seed,
                       "multiple_comparisons": "holm" if result.multiple else "none", **STATISTICS_DOC},
        "n_trials": len(result.sweep.trials),
        "n_pairs": result.n_pairs,
        "comparisons": comparisons,
        "leaderboard": leaderboard_document(result),
        "equal_memory": [{"treatment": c.treatment, "control": c.control, "condition": dict(c.condition), "metric": c.metric.name,
                          **metric_entry(c)} for c in result.equal_memory],
        "unpaired": unpaired,
        "failed": [{"trial_id": t.trial_id, result.axis: t.axes.get(result.axis), "state": t.state, "reason": t.failure}
                   for t in result.failed],
        "problems": [{"path": str(p.path), "trial_id": p.trial_id, "message": p.message} for p in result.sweep.problems],
        "notes": result.notes,
        "files": sorted(str(path.relative_to(output_dir)) for path in result.files if path.is_relative_to(output_dir)),
    })


def write_paired_csv(result: ComparisonResult, path: Path) -> Path:
    """Long format: one row per (metric, treatment, pair), with the pair's axes, trial ids, values and delta."""
    pairs = [pair for pairing in result.pairings.values() for pair in pairing.pairs]
    axes = list(dict.fromkeys(axis for pair in pairs for axis, _ in pair.condition + pair.key))
    columns = ["metric", "treatment", "control", *axes, "treatment_trial", "control_trial", "treatment_value", "control_value", "delta"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for comparison in result.comparisons:
            for index, pair in enumerate(comparison.pairs):
                treatment_value = float(comparison.treatment_values[index])
                control_value = float(comparison.control_values[index])
                writer.writerow({
                    "metric": comparison.metric.name, "treatment": comparison.treatment, "control": result.control,
                    **dict(pair.condition + pair.key), "treatment_trial": pair.treatment.trial_id,
                    "control_trial": pair.control.trial_id, "treatment_value": treatment_value,
                    "control_value": control_value, "delta": treatment_value - control_value,
                })
    return path


def write_leaderboard_csv(result: ComparisonResult, path: Path) -> Path:
    """One row per (condition, arm, metric): n, mean, the CI's half width, whether it is the column's best."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["condition", result.axis, "metric", "n", "mean", "ci_half_width", "best"])
        for row in leaderboard_document(result):
            for metric, cell in row["metrics"].items():
                writer.writerow([describe(tuple(row["condition"].items())), row[result.axis], metric, cell["n"],
                                 cell["mean"], cell["ci_half_width"], cell["best"]])
    return path


def write_summary_json(result: ComparisonResult, path: Path) -> Path:
    document = summary_document(result, path.parent)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def interval(bounds: tuple[float, float] | None) -> str:
    return "n/a" if bounds is None else f"[{cell(bounds[0], True)}, {cell(bounds[1], True)}]"


def verdict(comparison: MetricComparison, treatment: Any, control: Any) -> str:
    """In words: which side is significantly better, or 'not significant' (and why, with too few pairs)."""
    favours = comparison.favours
    if favours == "treatment":
        return f"{treatment} better"
    if favours == "control":
        return f"{control} better"
    if favours == "not significant" and 0 < comparison.stats.n < MIN_PAIRS_FOR_CLAIM:
        return f"not significant (n = {comparison.stats.n} < {MIN_PAIRS_FOR_CLAIM}: no claim)"
    return favours or "n/a"


def leaderboard_markdown(result: ComparisonResult) -> list[str]:
    board = result.leaderboard
    level = int(round(board.level * 100))
    lines: list[str] = []
    for condition in board.conditions:
        if len(board.conditions) > 1:
            lines += [f"### {describe(condition)}", ""]
        lines.append(f"| {result.axis} | " + " | ".join(f"`{m.name}` {arrow(m.better)}" for m in board.metrics) + " |")
        lines.append("|---" * (len(board.metrics) + 1) + "|")
        best = {m.name: board.best(condition, m) for m in board.metrics}
        for arm in board.arms:
            cells = []
            for metric in board.metrics:
                c = board.cell(condition, arm, metric.name)
                text = "n/a" if c.mean is None else f"{c.mean:.4g}" + (f" ± {c.half_width:.2g}" if c.half_width is not None else "")
                cells.append(f"**{text}**" if arm in best[metric.name] else text)
            label = f"{arm} (control)" if arm == result.control else str(arm)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", f"Mean ± half width of the {level}% t interval over each arm's seeds; bold: best of the column "
                      "(ranked metrics only; memory and compute are reported, not ranked).", ""]
    return lines


def arrow(better: str | None) -> str:
    return {"higher": "↑", "lower": "↓"}.get(better or "", "")


def comparison_markdown(result: ComparisonResult, treatment: Any, condition: tuple) -> list[str]:
    level = int(round(result.settings.level * 100))
    holm = " (Holm)" if result.multiple else ""
    lines = [
        f"| metric | n | {result.control} | {treatment} | Δ mean | {level}% t-CI | {level}% bootstrap CI "
        f"| p sign-flip{holm} | p t-test{holm} | d_z | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result.of(treatment, condition):
        s = c.stats
        sign_p = c.sign_p_holm if result.multiple else s.p_value
        t_p = c.t_p_holm if result.multiple else s.t_p_value
        lines.append(
            f"| `{c.metric.name}` {arrow(c.metric.better)} | {s.n} | {cell(c.control_mean)} | {cell(c.treatment_mean)} "
            f"| {cell(s.mean, True)} | {interval(s.t_ci)} | {interval(s.bootstrap_ci)} | {cell(sign_p)} | {cell(t_p)} "
            f"| {cell(s.d_z, True)} | {verdict(c, treatment, result.control)} |"
        )
    return lines


def headline(result: ComparisonResult, metric: str) -> list[str]:
    """One sentence per treatment on the headline metric: the delta, its CI, the verdict in words."""
    out = []
    for comparison in (c for c in result.comparisons if c.metric.name == metric):
        s = comparison.stats
        where = f" ({describe(comparison.condition)})" if comparison.condition else ""
        if s.mean is None:
            out.append(f"- `{comparison.treatment}` vs `{result.control}`{where}: no pairs.")
            continue
        ci = "" if s.t_ci is None else f", {int(round(s.level * 100))}% CI {interval(s.t_ci)}"
        out.append(f"- `{comparison.treatment}` − `{result.control}`{where}: {cell(s.mean, True)}{ci}, n = {s.n}: "
                   f"**{verdict(comparison, comparison.treatment, result.control)}**.")
    return out


def equal_memory_lines(result: ComparisonResult) -> list[str]:
    """One sentence per pair of arms that keep the same episodic memory, on the headline metrics."""
    out = []
    for c in result.equal_memory:
        s = c.stats
        where = f" ({describe(c.condition)})" if c.condition else ""
        if s.mean is None:
            continue
        ci = "" if s.t_ci is None else f", {int(round(s.level * 100))}% CI {interval(s.t_ci)}"
        out.append(f"- `{c.metric.name}`: `{c.treatment}` − `{c.control}`{where} = {cell(s.mean, True)}{ci}, n = {s.n}, "
                   f"p t-test (Holm) {cell(c.t_p_holm)}: **{verdict(c, c.treatment, c.control)}**.")
    return out


def write_report_md(result: ComparisonResult, path: Path) -> Path:
    sweep = result.sweep
    level = int(round(result.settings.level * 100))
    treatments = ", ".join(f"`{t}`" for t in result.treatments) or "none"
    lines = [
        f"# Sweep `{sweep.sweep_id}`: {result.axis} compared with `{result.control}`",
        "",
        f"Sweep directory: `{sweep.sweep_dir}`. Trials: {len(sweep.trials)}; compared: {treatments} against `{result.control}`, "
        f"paired by {', '.join(result.pair_by)} with every other axis held equal ({result.n_pairs} pairs); "
        f"failed: {len(result.failed)}.",
        "",
    ]
    adjusted = "the Holm-adjusted" if result.multiple else "the"
    if result.multiple:
        lines += ["Several comparisons per metric: both p-values are **Holm-adjusted** within each metric's family.", ""]
    lines += [f"A verdict names a side only with at least {MIN_PAIRS_FOR_CLAIM} pairs and {adjusted} paired t-test p below "
              f"{1 - result.settings.level:.2g}; otherwise it says **not significant**.", ""]
    names = result.metric_names()
    if names:
        lines += [f"## Headline: `{names[0]}`", "", *headline(result, names[0]), ""]
    if result.equal_memory:
        lines += ["## At equal episodic memory", "",
                  "The arms that keep the same number of episodes (`memory_episodes`), compared pairwise and paired by "
                  f"{', '.join(result.pair_by)} (Holm-adjusted within each metric):", "", *equal_memory_lines(result), ""]
    if result.leaderboard is not None and result.leaderboard.conditions:
        lines += ["## Leaderboard", "", *leaderboard_markdown(result)]
    for treatment, pairing in result.pairings.items():
        for condition in pairing.conditions():
            n = sum(1 for pair in pairing.pairs if pair.condition == condition)
            where = f", {describe(condition)}" if condition else ""
            lines += ["", f"## `{treatment}` − `{result.control}`{where} ({n} pairs)", ""]
            lines += comparison_markdown(result, treatment, condition)
            if 0 < n <= 16:
                lines += ["", f"With {n} pairs the exact sign-flip test cannot give p below 2/2^{n} = {2 / 2**n:.3g}."]
            excluded = [f"- `{c.metric.name}`: {e}" for c in result.of(treatment, condition) for e in c.excluded]
            if excluded:
                lines += ["", "Pairs left out of a metric:", "", *excluded]
    lines += ["", "## What each metric means", ""]
    lines += [f"- `{m.name}` ({m.better or 'reported, not ranked'}{' is better' if m.better else ''}): {m.meaning}"
              for m in (result.leaderboard.metrics if result.leaderboard else [])]
    lines += ["", "## Statistics", "", *[f"- {key}: {text}" for key, text in STATISTICS_DOC.items()], f"- confidence level: {level}%"]
    lines += ["", "## Unpaired trials", ""]
    lines += [f"- `{u.trial.trial_id}` (vs `{t}`): {u.reason}" for t, p in result.pairings.items() for u in p.unpaired] or ["None."]
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
    lines += ["", "Data: [paired_deltas.csv](paired_deltas.csv), [leaderboard.csv](leaderboard.csv), [summary.json](summary.json)."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
