"""A failed trial's cause: from the worker's failure.json, else from the end of Ray's error text."""

from __future__ import annotations

import json
import time
from pathlib import Path

from biollm_platform.sweep.progress import failure_of, worker_starts

RAY_ERROR = """ray.exceptions.RayTaskError(TrainingFailedError): ray::ImplicitFunc.train() (pid=1, ip=127.0.0.1)
  File "trial.py", line 120, in trial_driver
    trainer.fit()
ray.train.TrainingFailedError: Training failed due to worker errors:
[Rank 0 Error Snippet]:
Traceback (most recent call last):
  File "worker.py", line 130, in train_loop
ValueError: the data ran out
"""


def test_recorded_failure_wins(tmp_path: Path) -> None:
    trial = tmp_path / "sleep-seed7"
    trial.mkdir()
    (trial / "failure.json").write_text(json.dumps({"type": "KeyError", "message": "'x'", "traceback": "error.txt", "at": time.time()}))
    failure = failure_of(tmp_path, "sleep-seed7", RAY_ERROR, 3, "/tune/error.txt", since=time.time() - 60)
    assert (failure.type, failure.message, failure.attempt, failure.log) == ("KeyError", "'x'", 3, str(trial / "error.txt"))


def test_stale_or_missing_record_falls_back_to_rays_text(tmp_path: Path) -> None:
    trial = tmp_path / "sleep-seed7"
    trial.mkdir()
    (trial / "failure.json").write_text(json.dumps({"type": "KeyError", "message": "old", "traceback": "error.txt", "at": 1.0}))
    failure = failure_of(tmp_path, "sleep-seed7", RAY_ERROR, 2, "/tune/error.txt", since=time.time())
    assert (failure.type, failure.message, failure.log) == ("ValueError", "the data ran out", "/tune/error.txt")
    assert failure.one_line() == "ValueError: the data ran out (attempt 2; traceback in /tune/error.txt)"
    assert failure_of(tmp_path, "nope", "worker died", 1, None).one_line() == "Error: worker died (attempt 1)"


def test_worker_starts(tmp_path: Path) -> None:
    assert worker_starts(tmp_path) == 0
    (tmp_path / "attempts.jsonl").write_text('{"train_attempt": 1}\n{"train_attempt": 2}\n')
    assert worker_starts(tmp_path) == 2
