"""``CsvSink``: the run's scalar metrics as ``metrics.csv``, one row per logged step (a ``MetricsSink``).

Wide, as spreadsheets and ``pandas.read_csv`` expect: a ``step`` column, then one column per metric in
the order they first appear; a record without a metric leaves its cell empty. A metric that appears
later (the first evaluation, the first sleep) rewrites the file once with the wider header. A resumed
run drops the rows at or after its first new step, so the file never holds a step twice (as
``metrics.jsonl`` is truncated to the checkpoint). Non-scalar values (lists) are left out.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE_NAME = "metrics.csv"


def _cell(value: Any) -> str | None:
    """A CSV cell for a scalar; None for what is not one."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if value is None:
        return ""
    return None


class CsvSink:
    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / FILE_NAME
        self._columns: list[str] = ["step"]
        self._rows: list[dict[str, str]] = []
        self._started = False
        if self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                self._columns = list(reader.fieldnames or ["step"])
                self._rows = [dict(row) for row in reader]

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"step": str(int(step))}
        for key, value in metrics.items():
            if (cell := _cell(value)) is not None:
                row[key] = cell
        new = [key for key in row if key not in self._columns]
        if not self._started:  # a resumed run: forget what came after the checkpoint it resumed from
            self._started = True
            self._rows = [r for r in self._rows if r.get("step", "").isdigit() and int(r["step"]) < step]
            self._columns.extend(new)
            self._rewrite()
        elif new:
            self._columns.extend(new)
            self._rewrite()
        self._rows.append(row)
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, self._columns).writerow(row)

    def _rewrite(self) -> None:
        tmp = self.path.with_name(f".{FILE_NAME}.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, self._columns)
            writer.writeheader()
            writer.writerows(self._rows)
        os.replace(tmp, self.path)

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        pass

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        pass  # summary.json holds it

    def close(self) -> None:
        pass
