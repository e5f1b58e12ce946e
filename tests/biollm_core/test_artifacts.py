"""Run artifacts: strict JSON written atomically, the JSONL sink, metrics truncated on resume.

Redaction is tested in test_redaction.py (biollm_core/redaction.py, what the runner uses).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from biollm_core.artifacts import JsonlSink, json_safe, run_metadata, truncate_metrics, write_json_atomic
from biollm_core.protocols import MetricsSink


def test_write_json_atomic_turns_non_finite_into_null(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "summary.json"
    write_json_atomic(path, {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": {"d": torch.tensor(2.5)},
                             "e": (1, 2), "f": "text"})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None, None], "c": {"d": 2.5}, "e": [1, 2], "f": "text"}
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]  # no temporary file left behind
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}


def test_json_safe_tensors() -> None:
    assert json_safe(torch.tensor([1.0, float("nan")])) == [1.0, None]


def test_truncate_metrics(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "x": s * 2}) + "\n" for s in range(1, 6)))
    truncate_metrics(path, 3)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]
    truncate_metrics(tmp_path / "missing.jsonl", 3)  # nothing to do
    assert not (tmp_path / "missing.jsonl").exists()


def test_jsonl_sink_writes_one_strict_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    sink = JsonlSink(path)
    assert isinstance(sink, MetricsSink)
    sink.log_metrics(1, {"loss": 0.5, "kl": math.nan})
    assert json.loads(path.read_text()) == {"step": 1, "loss": 0.5, "kl": None}  # flushed before close
    sink.log_metrics(2, {"loss": torch.tensor(0.25)})
    sink.close()
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]


def test_run_metadata_names_versions_and_device() -> None:
    meta = run_metadata(torch.device("cpu"), ["a note"])
    assert meta["packages"]["torch"] is not None and meta["python"].count(".") == 2
    assert meta["device"] == "cpu" and meta["cuda_device"] is None and meta["notes"] == ["a note"]
    json.dumps(meta)
