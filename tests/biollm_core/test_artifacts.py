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


def test_write_json_atomic_syncs_file_and_directory(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The data is fsynced before the rename, and the directory after it (a crash keeps old or new)."""
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert len(synced) == 2
    assert Path(synced[0]).name.startswith(".m.json.") and Path(synced[1]) == tmp_path


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": 1})
    try:
        write_json_atomic(path, {"a": object()})  # not JSON
    except TypeError:
        pass
    else:
        raise AssertionError("an unencodable value must fail")
    assert json.loads(path.read_text()) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["m.json"]


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
