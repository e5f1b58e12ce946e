"""Live view of a running sweep, fed by Tune's trial events; it also keeps manifest.json current.

Attempts count every start of a trial: each Tune start, and each Train worker restart inside one
(the worker reports its ``train_attempt`` within the Tune start). A failed trial records its cause:
the worker's ``failure.json`` (type, message, traceback file) when the trial directory is here, else
the last line of Ray's error and Tune's error file.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .manifest import Manifest, TrialFailure, manifest_guard, now, write_manifest
from .worker import ATTEMPTS, FAILURE

STATE_STYLE = {"PENDING": "dim", "RUNNING": "cyan", "TERMINATED": "green", "ERROR": "red"}
SHOWN_METRICS = ("seen_acc", "task_loss", "summary/final_seen_acc_avg")


def _tune_callback_base() -> type:
    from ray.tune import Callback

    return Callback


def _trial_id(trial: Any) -> str:
    return trial.config["trial"]["trial"]["trial_id"]


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # Ray's errors end with the exception raised in the worker; the last line is the most specific
    return (lines[-1] if lines else "unknown error")[:500]


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)):\s*(.*)$")


def failure_of(
    sweep_dir: Path, out_dir: str, error_text: str, attempt: int, error_file: str | None, since: float = 0.0
) -> TrialFailure:
    """The cause of a failed trial: its worker's failure.json when written after ``since`` (this Tune
    start), else the exception at the end of Ray's error text."""
    trial_dir = sweep_dir / out_dir
    try:
        recorded = json.loads((trial_dir / FAILURE).read_text())
        if float(recorded["at"]) < since:
            raise ValueError("an earlier attempt's failure")
        return TrialFailure(
            type=str(recorded["type"]),
            message=str(recorded["message"]),
            attempt=attempt,
            log=str(trial_dir / recorded["traceback"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    lines = [line.strip() for line in error_text.strip().splitlines() if line.strip()]
    for line in reversed(lines):  # Ray's errors end with the exception raised in the worker
        if match := _EXCEPTION_LINE.match(line):
            return TrialFailure(type=match[1].rpartition(".")[2], message=match[2][:500], attempt=attempt, log=error_file)
    return TrialFailure(type="Error", message=_one_line(error_text), attempt=attempt, log=error_file)


def worker_starts(trial_dir: Path) -> int | None:
    """How many times a worker started on this trial (lines of its attempts.jsonl), None if unreadable."""
    try:
        return sum(1 for line in (trial_dir / ATTEMPTS).read_text().splitlines() if line.strip())
    except FileNotFoundError:
        return 0
    except OSError:
        return None


def _null_callback() -> Any:
    return _tune_callback_base()()


_NullCallback = _null_callback


def make_tracker(sweep_dir: Path, manifest: Manifest, console: Console | None, publish: Any = None) -> Any:
    """A Tune Callback that records trial states in the manifest and (when ``console``) draws the table.

    ``publish`` (optional) is called with the manifest after each state change (remote jobs print it).
    """

    class SweepTracker(_tune_callback_base()):  # type: ignore[misc]
        def __init__(self) -> None:
            self.latest: dict[str, dict[str, Any]] = {}
            self.attempts_before: dict[str, int] = {}  # trial -> attempts before its current Tune start
            self.starts_before: dict[str, int | None] = {}  # trial -> worker starts before it (attempts.jsonl)
            self.started_at: dict[str, float] = {}  # trial -> epoch time of its current Tune start
            self.started = time.monotonic()
            self.live = (
                Live(self.render(), console=console, refresh_per_second=2, transient=False)
                if console
                else None
            )

        def __reduce__(self) -> tuple:
            # Tune pickles its callbacks into the experiment snapshot; the live view (locks, a terminal)
            # cannot travel and is not needed there: resume rebuilds the tracker from the manifest.
            return (_NullCallback, ())

        def __enter__(self) -> SweepTracker:
            if self.live:
                self.live.start()
            return self

        def __exit__(self, *exc: object) -> None:
            if self.live:
                self.live.update(self.render())
                self.live.stop()

        def _set(self, trial: Any, **fields: Any) -> None:
            with manifest_guard:
                record = manifest.trial(_trial_id(trial))
                for key, value in fields.items():
                    setattr(record, key, value)
                write_manifest(sweep_dir, manifest)
            if publish:
                publish(manifest)
            self._refresh()

        def _refresh(self) -> None:
            if self.live:
                self.live.update(self.render())

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            record = manifest.trial(_trial_id(trial))
            self.attempts_before[record.trial_id] = record.attempts
            self.starts_before[record.trial_id] = worker_starts(sweep_dir / record.out_dir)
            self.started_at[record.trial_id] = time.time()
            self._set(
                trial,
                state="RUNNING",
                started_at=now(),
                ended_at=None,
                error=None,
                failure=None,
                attempts=record.attempts + 1,
            )

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            trial_id = _trial_id(trial)
            self.latest[trial_id] = {**self.latest.get(trial_id, {}), **result}
            if "step" in result:
                manifest.trial(trial_id).step = int(result["step"])
            if "train_attempt" in result:  # a Train worker restart inside this Tune start is an attempt too
                attempts = self.attempts_before.get(trial_id, 0) + int(result["train_attempt"])
                if attempts != manifest.trial(trial_id).attempts:
                    self._set(trial, attempts=attempts)
            self._refresh()

        def _final_attempts(self, trial_id: str, out_dir: str) -> dict[str, int]:
            """Every worker start of this Tune start, counted from attempts.jsonl when it is here."""
            before, now_starts = self.starts_before.get(trial_id), worker_starts(sweep_dir / out_dir)
            if before is None or not now_starts:
                return {}
            return {"attempts": self.attempts_before.get(trial_id, 0) + max(1, now_starts - before)}

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            record = manifest.trial(_trial_id(trial))
            self._set(
                trial, state="TERMINATED", ended_at=now(), error=None, **self._final_attempts(record.trial_id, record.out_dir)
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            error = trial.get_error()
            record = manifest.trial(_trial_id(trial))
            attempts = self._final_attempts(record.trial_id, record.out_dir).get("attempts", record.attempts)
            failure = failure_of(
                sweep_dir, record.out_dir, str(error) if error else "trial failed", attempts,
                getattr(trial, "error_file", None), self.started_at.get(record.trial_id, 0.0),
            )
            self._set(
                trial, state="ERROR", ended_at=now(), error=failure.one_line(), failure=failure, attempts=attempts
            )

        def render(self) -> Group:
            counts = manifest.counts()
            elapsed = time.monotonic() - self.started
            head = Text(
                f"sweep {manifest.sweep_id}  {elapsed:5.0f}s  pending {counts['PENDING']}  "
                f"running {counts['RUNNING']}  "
                f"done {counts['TERMINATED']}  failed {counts['ERROR']}"
            )
            table = Table(box=None, pad_edge=False)
            for column in ("trial", "state", "step", *SHOWN_METRICS, "error"):
                table.add_column(column)
            for record in manifest.trials:
                result = self.latest.get(record.trial_id, {})
                figures = [
                    f"{result[m]:.3f}" if isinstance(result.get(m), float) else "" for m in SHOWN_METRICS
                ]
                step = "" if record.step is None else str(record.step)
                table.add_row(
                    record.trial_id,
                    Text(record.state, style=STATE_STYLE[record.state]),
                    step,
                    *figures,
                    (record.error or "")[:80],
                )
            return Group(head, table)

    return SweepTracker()
