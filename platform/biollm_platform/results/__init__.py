"""Results of a sweep: a leaderboard, paired statistics against a control, tables, plots and reports,
read from disk.

``aggregate_sweep(sweep_dir)`` reads a sweep's trial artifacts, compares every value of an axis (the
method, by default) with a control (nosleep), pairing trials by seed with every other axis held equal,
and writes ``<sweep>/comparison/``.

The names below are imported on first use (PEP 562), so that importing a light submodule such as
``results.collect`` does not pull in numpy's statistics and matplotlib.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "aggregate_sweep": "biollm_platform.results.aggregate",
    "ComparisonResult": "biollm_platform.results.comparison",
    "MetricComparison": "biollm_platform.results.comparison",
    "StatsSettings": "biollm_platform.results.comparison",
    "print_comparison": "biollm_platform.results.table",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
