"""Per-step metric records whose tensor values are read off the device in one go.

Reading a scalar off a GPU (``.item()``) stalls the pipeline, so each step stores its figures as device
tensors and ``flush`` converts every buffered record with a single transfer at eval points, sleeps,
checkpoints and the end of the run.
"""

from __future__ import annotations

import time
from typing import Any

import torch


class StepLog:
    def __init__(self) -> None:
        self._records: list[tuple[int, dict[str, Any]]] = []
        self._tokens = 0
        self._since = time.perf_counter()

    def add(self, step: int, record: dict[str, Any], tokens: int) -> None:
        self._records.append((step, record))
        self._tokens += tokens

    def flush(self) -> list[tuple[int, dict[str, Any]]]:
        """Materialise buffered records; ``tokens_per_s`` is the window's throughput."""
        if not self._records:
            return []
        now = time.perf_counter()
        tokens_per_s = self._tokens / max(now - self._since, 1e-9)
        slots = [(i, k) for i, (_, r) in enumerate(self._records) for k, v in r.items() if isinstance(v, torch.Tensor)]
        if slots:
            values = torch.stack([self._records[i][1][k].detach().float().reshape(()) for i, k in slots]).cpu().tolist()
            for (i, k), value in zip(slots, values, strict=True):
                self._records[i][1][k] = value
        out = [(step, {**record, "tokens_per_s": tokens_per_s}) for step, record in self._records]
        self._records, self._tokens, self._since = [], 0, now
        return out
