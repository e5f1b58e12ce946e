"""A sweep trial's TensorBoard events and metrics.csv, after its worker died once and was retried."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.mark.parametrize("trial", ["cls-seed7", "nosleep-seed7"])
def test_curves_match_metrics_jsonl_with_no_step_twice(reference_run: Path, trial: str) -> None:
    out = reference_run / trial
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records]
    evals = [r for r in records if "seen_acc" in r]
    accumulator = EventAccumulator(str(out / "tensorboard"))
    accumulator.Reload()
    assert [e.step for e in accumulator.Scalars("task_loss")] == steps  # cls-seed7's retry was purged
    assert [e.step for e in accumulator.Scalars("seen_acc")] == [r["step"] for r in evals]
    assert [e.value for e in accumulator.Scalars("seen_acc")] == pytest.approx([r["seen_acc"] for r in evals])
    with (out / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == steps
    assert [float(r["seen_acc"]) for r in rows if r["seen_acc"]] == pytest.approx([r["seen_acc"] for r in evals])


def test_submit_json_is_the_only_thing_on_stdout(reference_run: Path) -> None:
    document = json.loads((reference_run.parent.parent / "submit-stdout.txt").read_text())  # one object, nothing else
    assert (document["sweep_id"], document["status"]) == (reference_run.name, "FINISHED")
    assert document["counts"]["TERMINATED"] == 2 and {t["trial_id"] for t in document["trials"]} == {"cls-seed7", "nosleep-seed7"}
    assert document["comparison"] == str(reference_run / "comparison" / "summary.json")
