"""The engine's MetricsSink that reports a trial's progress to Ray (Train, or Tune for train_local).

Checkpoints are never handed to Ray: the trial's own ``checkpoints/`` directory (in the sweep
directory, or mirrored to the storage URI as each is written, ``uri_storage.py``) is the one copy,
and every retry, resume and fresh node continues from it. Ray gets the step of each checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# Ray Train V2 hands a report to its controller through a one-slot queue that the controller drains at
# each health check (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, 0.5 s here): a report made sooner than that after
# the previous one blocks the engine until the next poll. Eval-only reports are therefore sent at most
# this often; checkpoint and summary reports always go (the engine's metrics.jsonl has every eval).
MIN_EVAL_REPORT_INTERVAL_S = 1.0


def _scalars(record: Mapping[str, Any]) -> dict[str, float | int]:
    """The numeric entries of a metrics record (what Tune can show and compare)."""
    out: dict[str, float | int] = {}
    for key, value in record.items():
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
            out[key] = value
    return out


class RayReportSink:
    """MetricsSink that forwards eval records and checkpoint steps to `ray.train.report`.

    Reports at eval points (records carrying ``seen_acc``; at most one per ``min_eval_interval_s``) and
    at every checkpoint the engine writes (every ``logging.checkpoint_interval`` steps and at the end),
    with the latest eval's figures, so Ray sees progress without a report per step. Every report
    carries ``context`` (the worker's attempt number). ``report_s`` and ``reports`` say how long the
    engine waited in Ray's report calls.
    """

    def __init__(
        self,
        *,
        to_tune: bool = False,
        context: Mapping[str, float | int] | None = None,
        min_eval_interval_s: float = MIN_EVAL_REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._to_tune = to_tune  # executor train_local: the loop runs in the Tune trial, which gets the reports
        self._context = dict(context or {})
        self._latest: dict[str, float | int] = {}
        self._min_eval_interval_s = min_eval_interval_s
        self._clock = clock
        self._last_report_at: float | None = None
        self.first_step_at: float | None = None  # wall time at the end of the first wake step
        self.last_step_at: float | None = None
        self.report_s = 0.0  # time spent inside Ray's report calls
        self.reports = 0

    def on_progress(self, progress: Any) -> None:
        """The engine's per-step progress callback: timestamps for Ray's fixed cost per trial."""
        self.last_step_at = time.time()
        if self.first_step_at is None:
            self.first_step_at = self.last_step_at

    def _report(self, metrics: dict[str, Any]) -> None:
        started = self._clock()
        self._send({**metrics, **self._context})
        self._last_report_at = self._clock()
        self.report_s += self._last_report_at - started
        self.reports += 1

    def _send(self, metrics: dict[str, Any]) -> None:
        if self._to_tune:
            import ray.tune

            ray.tune.report(metrics)
            return
        import ray.train

        ray.train.report(metrics)  # a collective: every rank reports in step

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        self._latest = {**_scalars(metrics), "step": step}
        if "seen_acc" in metrics and (
            self._last_report_at is None or self._clock() - self._last_report_at >= self._min_eval_interval_s
        ):
            self._report(self._latest)

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        self._report({**self._latest, "step": step, "checkpoint_step": step, "final": int(final)})

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        self._report(
            {f"summary/{k}": v for k, v in _scalars(summary).items()}
            | {"step": self._latest.get("step", 0), "summary_written": 1}
        )

    def close(self) -> None:
        pass
