"""The metrics sinks a run's config asks for, beside the engine's own metrics.jsonl.

``logging.use_tensorboard`` -> ``TensorBoardSink`` (``<run dir>/tensorboard/``), ``logging.use_csv`` ->
``CsvSink`` (``<run dir>/metrics.csv``), ``logging.use_wandb`` -> ``WandbSink``. `biollm train` and every
sweep trial build them here, on rank 0 only; each module is imported only when its sink is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biollm_core.config.schema import RunConfig
    from biollm_core.protocols import MetricsSink


class DeferredSinks:
    """Sinks built at the run's first record, not before: `biollm train` refuses bad data or a bad model
    before anything exists on disk, and a W&B or TensorBoard sink made up front would already have
    written its folder. The engine's MetricsSink methods, fanned out to what ``factory`` returns."""

    def __init__(self, factory: Callable[[], list[MetricsSink]]) -> None:
        self._factory = factory
        self._sinks: list[MetricsSink] | None = None

    def _open(self) -> list[MetricsSink]:
        if self._sinks is None:
            self._sinks = list(self._factory())
        return self._sinks

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        for sink in self._open():
            sink.log_metrics(step, metrics)

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        for sink in self._open():
            sink.log_checkpoint(step, path, final)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        for sink in self._open():
            sink.log_summary(summary)

    def close(self) -> None:
        for sink in self._sinks or []:  # never opened: nothing was made, nothing to close
            sink.close()


def platform_sinks(
    config: RunConfig,
    *,
    out_dir: Path,
    run_config: Mapping[str, Any],
    run_name: str | None = None,
    group: str | None = None,
    extra_config: Mapping[str, Any] | None = None,
    rank: int = 0,
) -> list[MetricsSink]:
    """The sinks ``config.logging`` enables, for the run writing to ``out_dir`` (none off rank 0)."""
    if rank != 0:
        return []
    sinks: list[MetricsSink] = []
    if config.logging.use_tensorboard:
        from biollm_platform.tracking.tensorboard_sink import TensorBoardSink

        sinks.append(TensorBoardSink(out_dir))
    if config.logging.use_csv:
        from biollm_platform.tracking.csv_sink import CsvSink

        sinks.append(CsvSink(out_dir))
    if config.logging.use_wandb:
        from biollm_platform.tracking.wandb_sink import wandb_sink_from_config

        sink = wandb_sink_from_config(
            config.logging, out_dir=out_dir, run_config=run_config, run_name=run_name, group=group,
            extra_config=extra_config, rank=rank,
        )
        if sink is not None:
            sinks.append(sink)
    return sinks
