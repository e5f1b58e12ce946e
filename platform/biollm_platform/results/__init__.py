"""Results of a sweep: a leaderboard, paired statistics against a control, tables, plots and reports,
read from disk.

``aggregate_sweep(sweep_dir)`` reads a sweep's trial artifacts, compares every value of an axis (the
method, by default) with a control (nosleep), pairing trials by seed with every other axis held equal,
and writes ``<sweep>/comparison/``.
"""

from biollm_platform.results.aggregate import aggregate_sweep
from biollm_platform.results.comparison import ComparisonResult, MetricComparison, StatsSettings
from biollm_platform.results.table import print_comparison

__all__ = ["ComparisonResult", "MetricComparison", "StatsSettings", "aggregate_sweep", "print_comparison"]
