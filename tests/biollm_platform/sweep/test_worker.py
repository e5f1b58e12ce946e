"""The Train worker's records of its starts and failures, in the trial directory."""

from __future__ import annotations

import json
from pathlib import Path

from biollm_platform.sweep.worker import count_start, record_failure


def test_worker_starts_are_counted_per_driver_run(tmp_path: Path) -> None:
    assert [count_start(tmp_path, "run-a"), count_start(tmp_path, "run-a"), count_start(tmp_path, "run-b")] == [1, 2, 1]
    assert len((tmp_path / "attempts.jsonl").read_text().splitlines()) == 3  # every start of the trial


def test_failure_record_names_type_message_and_traceback(tmp_path: Path) -> None:
    try:
        raise RuntimeError("first line\nthe cause")
    except RuntimeError as error:
        record_failure(tmp_path, error, 3)
    recorded = json.loads((tmp_path / "failure.json").read_text())
    assert (recorded["type"], recorded["message"], recorded["train_attempt"]) == ("RuntimeError", "the cause", 3)
    assert "Traceback" in (tmp_path / recorded["traceback"]).read_text()
