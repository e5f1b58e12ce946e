"""CsvSink: metrics.csv read back with the csv module, through a run's life (new columns, a resume)."""

from __future__ import annotations

import csv
from pathlib import Path

from biollm_platform.tracking.csv_sink import CsvSink


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_wide_rows_with_columns_as_they_appear(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path)
    sink.log_metrics(1, {"task_loss": 0.5, "distill_kl": None, "matrix": [[1.0]]})
    sink.log_metrics(2, {"task_loss": 0.25, "seen_acc": 0.75, "segment_end": True})
    sink.close()
    columns, rows = _read(tmp_path / "metrics.csv")
    assert columns == ["step", "task_loss", "distill_kl", "seen_acc", "segment_end"]  # lists are left out
    assert rows == [
        {"step": "1", "task_loss": "0.5", "distill_kl": "", "seen_acc": "", "segment_end": ""},
        {"step": "2", "task_loss": "0.25", "distill_kl": "", "seen_acc": "0.75", "segment_end": "1"},
    ]


def test_a_resumed_run_replaces_the_rows_past_its_checkpoint(tmp_path: Path) -> None:
    first = CsvSink(tmp_path)
    for step in range(1, 6):
        first.log_metrics(step, {"task_loss": float(step)})
    first.close()  # "killed" after step 5; the checkpoint was at step 3
    second = CsvSink(tmp_path)
    for step in range(4, 7):
        second.log_metrics(step, {"task_loss": step * 10.0, "seen_acc": 0.5})
    second.close()
    columns, rows = _read(tmp_path / "metrics.csv")
    assert columns == ["step", "task_loss", "seen_acc"]
    assert [(r["step"], r["task_loss"]) for r in rows] == [
        ("1", "1.0"), ("2", "2.0"), ("3", "3.0"), ("4", "40.0"), ("5", "50.0"), ("6", "60.0")
    ]
