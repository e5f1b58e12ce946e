"""The Train worker's report sink: which engine records reach Ray, and how often."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from biollm_platform.sweep.report_sink import RayReportSink


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingSink(RayReportSink):
    """The sink's policy with Ray's report call replaced by a list (the real call runs in the sweep tests)."""

    def __init__(self, tmp_path: Path, clock: Clock, **kwargs: Any) -> None:
        super().__init__(clock=clock, **kwargs)
        self.sent: list[tuple[dict[str, Any], Any]] = []
        self.clock = clock

    def _send(self, metrics: dict[str, Any]) -> None:
        self.sent.append((metrics, None))
        self.clock.now += 0.25  # a report that takes a while


def test_eval_reports_are_spaced_but_checkpoints_always_go(tmp_path: Path) -> None:
    clock = Clock()
    sink = RecordingSink(tmp_path, clock, min_eval_interval_s=1.0, to_tune=True, context={"train_attempt": 2})
    for step in range(1, 11):  # an eval every 0.3 s
        clock.now += 0.3
        sink.log_metrics(step, {"seen_acc": step / 10, "task_loss": 1.0})
    reported_steps = [m["step"] for m, _ in sink.sent]
    assert reported_steps[0] == 1  # the first eval goes at once
    gaps = [b - a for a, b in zip(reported_steps, reported_steps[1:], strict=False)]
    assert all(gap >= 3 for gap in gaps) and len(reported_steps) < 10
    sink.log_metrics(11, {"task_loss": 0.5})  # not an eval record: never reported on its own
    assert len(sink.sent) == len(reported_steps)
    sink.log_checkpoint(11, tmp_path, final=True)  # right after an eval report: still sent
    metrics, _ = sink.sent[-1]
    assert metrics["checkpoint_step"] == 11 and metrics["final"] == 1 and metrics["task_loss"] == 0.5  # the latest record
    assert all(m["train_attempt"] == 2 for m, _ in sink.sent)  # every report says which worker start it is
    assert sink.reports == len(sink.sent) and sink.report_s == pytest.approx(0.25 * len(sink.sent))


def test_no_spacing_reports_every_eval(tmp_path: Path) -> None:
    clock = Clock()
    sink = RecordingSink(tmp_path, clock, min_eval_interval_s=0.0, to_tune=True)
    for step in range(1, 6):
        sink.log_metrics(step, {"seen_acc": 0.5})
    assert [m["step"] for m, _ in sink.sent] == [1, 2, 3, 4, 5]
