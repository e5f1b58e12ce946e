"""Test-only faults for real sweeps, injected through the documented BIOLLM_TRIAL_SINKS extension point.

A FaultSink sits beside the engine's other sinks in one trial's rank-0 Train worker (or rank ``on_rank``
of a data-parallel trial) and, at a step,
makes the worker exit (``exit``: the process dies, Train restarts it), block (``pause``: a driver
killed meanwhile takes the worker with it) or raise (``raise``: the engine fails with a RuntimeError).
``exit`` and ``pause`` fire once per trial (a marker file in the trial directory remembers); ``raise``
fires on every attempt, so retries run out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

KINDS = ("exit", "pause", "raise")


def fault_spec(trial: str, kind: str, at: int, marker: str | None = None, on_rank: int = 0) -> str:
    """A BIOLLM_TRIAL_SINKS entry that injects ``kind`` into ``trial`` (its worker ``on_rank``) at step ``at``."""
    options = {"trial": trial, "kind": kind, "at": at} | ({"marker": marker} if marker else {})
    options |= {"on_rank": on_rank} if on_rank else {}
    return f"{Path(__file__).resolve()}:fault?{urlencode(options)}"


class FaultSink:
    def __init__(self, out_dir: Path, kind: str, at: int, marker: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"fault kind {kind!r}: expected one of {KINDS}")
        self._kind, self._at, self._marker = kind, at, out_dir / marker

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        if step < self._at:
            return
        if self._kind == "raise":
            raise RuntimeError(f"injected fault at step {step}")
        if self._marker.exists():
            return
        self._marker.write_text(str(step))
        if self._kind == "exit":
            os._exit(1)
        time.sleep(600)

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        pass

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def fault(*, trial_id: str, out_dir: Path, rank: int, trial: str, kind: str, at: str, marker: str | None = None,
          on_rank: str = "0") -> FaultSink | None:
    """The BIOLLM_TRIAL_SINKS factory: a FaultSink for rank ``on_rank`` of ``trial``, nothing elsewhere."""
    if rank != int(on_rank) or trial_id != trial:
        return None
    return FaultSink(out_dir, kind, int(at), marker or f".{kind}_injected")
