"""Live view of a running sweep, fed by Tune's trial events; it also keeps manifest.json current."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .manifest import Manifest, now, write_manifest

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
            self._set(
                trial,
                state="RUNNING",
                started_at=now(),
                ended_at=None,
                error=None,
                attempts=record.attempts + 1,
            )

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            self.latest[_trial_id(trial)] = {**self.latest.get(_trial_id(trial), {}), **result}
            if "step" in result:
                manifest.trial(_trial_id(trial)).step = int(result["step"])
            self._refresh()

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._set(trial, state="TERMINATED", ended_at=now(), error=None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            error = trial.get_error()
            self._set(
                trial, state="ERROR", ended_at=now(), error=_one_line(str(error)) if error else "trial failed"
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
