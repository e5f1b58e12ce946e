"""``TensorBoardSink``: the run's scalar metrics as TensorBoard event files (a ``MetricsSink``).

Written with tensorboardX into ``<out_dir>/tensorboard/``: every numeric metric of a record is a scalar
at that step, the summary's numbers go under ``summary/`` at the last step. ``tensorboard --logdir
outputs/sweeps/<sweep id>`` shows every trial of a sweep as one run. A resumed run starts its writer
with ``purge_step`` at its first new step, so TensorBoard discards the points the interrupted attempt
wrote past the checkpoint.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DIR_NAME = "tensorboard"
FLUSH_SECS = 10  # TensorBoard shows a running trial's curves within seconds


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


class TensorBoardSink:
    def __init__(self, out_dir: Path) -> None:
        self.log_dir = Path(out_dir) / DIR_NAME
        self._writer: Any = None
        self._last_step = 0

    def _open(self, step: int) -> Any:
        from tensorboardX import SummaryWriter  # 1-2 s to import: only for runs that log to TensorBoard

        resumed = self.log_dir.is_dir() and any(self.log_dir.glob("events.out.tfevents.*"))
        # tensorboardX names files by the second; TensorBoard reads them in name order. A nanosecond suffix
        # keeps two attempts of one second apart and in order (the later one's purge_step then applies).
        self._writer = SummaryWriter(
            logdir=str(self.log_dir), purge_step=step if resumed else None, flush_secs=FLUSH_SECS,
            filename_suffix=f".{time.time_ns()}.{os.getpid()}",
        )
        return self._writer

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        writer = self._writer or self._open(step)
        for key, value in metrics.items():
            if (number := _scalar(value)) is not None:
                writer.add_scalar(key, number, global_step=int(step))
        self._last_step = int(step)

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        pass

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        writer = self._writer or self._open(self._last_step)
        for key, value in summary.items():
            if (number := _scalar(value)) is not None:
                writer.add_scalar(f"summary/{key}", number, global_step=self._last_step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
