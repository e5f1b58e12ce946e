"""Results of a sweep: paired sleep/nosleep statistics, tables, plots and reports, read from disk.

``aggregate_sweep(sweep_dir)`` reads a sweep's trial artifacts, pairs trials by seed (every other axis
held equal), computes paired statistics for each compared metric and writes ``<sweep>/comparison/``.
"""

from biollm_platform.results.aggregate import aggregate_sweep
from biollm_platform.results.comparison import ComparisonResult, MetricComparison, StatsSettings
from biollm_platform.results.table import print_comparison

__all__ = ["ComparisonResult", "MetricComparison", "StatsSettings", "aggregate_sweep", "print_comparison"]
