"""The Ray Train loop of one trial: run the CLS engine, report its evals and checkpoints to Ray.

Runs inside every Train worker. Rank 0 writes the trial's artifacts; other ranks run the same engine
into a scratch directory (the engine is single-process; ranks exist for backends that shard work) and
report in step, because `ray.train.report` is a collective. A restarted worker continues from the
trial's own checkpoints, or from the checkpoint Ray hands back when the trial directory is gone (a
fresh node).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def _scalars(record: Mapping[str, Any]) -> dict[str, float | int]:
    """The numeric entries of a metrics record (what Tune can show and compare)."""
    out: dict[str, float | int] = {}
    for key, value in record.items():
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
            out[key] = value
    return out


# Ray Train V2 hands a report to its controller through a one-slot queue that the controller drains at
# each health check (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, 0.5 s here): a report made sooner than that after
# the previous one blocks the engine until the next poll. Eval-only reports are therefore sent at most
# this often; checkpoint and summary reports always go (the engine's metrics.jsonl has every eval).
MIN_EVAL_REPORT_INTERVAL_S = 1.0


class RayReportSink:
    """MetricsSink that forwards eval records and checkpoints to `ray.train.report`.

    Reports at eval points (records carrying ``seen_acc``; at most one per ``min_eval_interval_s``) and
    at every checkpoint the engine writes (every ``logging.checkpoint_interval`` steps and at the end),
    with the latest eval's figures, so Ray sees progress without a report per step. ``report_s`` and
    ``reports`` say how long the engine waited in Ray's report calls.
    """

    def __init__(
        self,
        rank: int,
        out_dir: Path,
        faults: Mapping[str, int | None] | None = None,
        *,
        to_tune: bool = False,
        min_eval_interval_s: float = MIN_EVAL_REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rank = rank
        self._to_tune = to_tune  # executor train_local: the loop runs in the Tune trial, which gets the reports
        self._out_dir = out_dir
        self._faults = dict(faults or {})
        self._latest: dict[str, float | int] = {}
        self._min_eval_interval_s = min_eval_interval_s
        self._clock = clock
        self._last_report_at: float | None = None
        self.first_step_at: float | None = None  # wall time at the end of the first wake step
        self.last_step_at: float | None = None
        self.report_s = 0.0  # time spent inside Ray's report calls
        self.reports = 0

    def on_progress(self, progress: Any) -> None:
        """The engine's per-step progress callback: timestamps for Ray's fixed cost per trial."""
        self.last_step_at = time.time()
        if self.first_step_at is None:
            self.first_step_at = self.last_step_at

    def _report(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        started = self._clock()
        self._send(metrics, checkpoint)
        self._last_report_at = self._clock()
        self.report_s += self._last_report_at - started
        self.reports += 1

    def _send(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        if self._to_tune:  # the trial's checkpoints stay in its directory; Tune gets the metrics
            import ray.tune

            ray.tune.report(metrics)
            return
        import ray.train

        ray.train.report(metrics, checkpoint=checkpoint)

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        self._latest = {**_scalars(metrics), "step": step}
        self._maybe_inject_fault(step)
        if "seen_acc" in metrics and (
            self._last_report_at is None or self._clock() - self._last_report_at >= self._min_eval_interval_s
        ):
            self._report(self._latest)

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        import ray.train

        local = self._to_tune or self._rank != 0
        checkpoint = None if local else ray.train.Checkpoint.from_directory(str(path))
        self._report(
            {**self._latest, "step": step, "checkpoint_step": step, "final": int(final)},
            checkpoint=checkpoint,
        )

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        self._report(
            {f"summary/{k}": v for k, v in _scalars(summary).items()} | {"step": self._latest.get("step", 0), "summary_written": 1}
        )

    def close(self) -> None:
        pass

    def _maybe_inject_fault(self, step: int) -> None:
        """Test hooks set at submit: the worker dies once (``exit``) or blocks once (``pause``) at a step."""
        if self._rank != 0:
            return
        for kind, at in self._faults.items():
            marker = self._out_dir / f".{kind}_injected"
            if at is None or step < at or marker.exists():
                continue
            marker.write_text(str(step))
            if kind == "exit":
                os._exit(1)
            time.sleep(600)  # pause: a driver killed meanwhile takes this worker with it


def _prepare_resume(out_dir: Path, *, in_tune: bool = False) -> bool:
    """True when the trial continues from a checkpoint: its own, or the one Ray restored (fresh node)."""
    import ray.train
    import ray.tune

    from biollm_core.checkpoint import latest_checkpoint

    checkpoints = out_dir / "checkpoints"
    restored = ray.tune.get_checkpoint if in_tune else ray.train.get_checkpoint
    if latest_checkpoint(checkpoints) is None and (checkpoint := restored()) is not None:
        with checkpoint.as_directory() as source:
            step = json.loads((Path(source) / "meta.json").read_text())["step"]
            shutil.copytree(source, checkpoints / f"step-{step:08d}", dirs_exist_ok=True)
    if latest_checkpoint(checkpoints) is not None:
        return True
    # Killed before its first checkpoint: start over (the engine refuses a half-written run otherwise)
    shutil.rmtree(checkpoints, ignore_errors=True)
    (out_dir / "summary.json").unlink(missing_ok=True)
    return False


def _record_timing(out_dir: Path, attempt: dict[str, Any]) -> None:
    """Append this attempt's timestamps to ray_timing.json (Ray's fixed cost per trial comes from it)."""
    path = out_dir / "ray_timing.json"
    attempts = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*attempts, attempt], indent=1))


def _sync(source: str, destination: str) -> None:
    """Copy a directory tree between a local path and a storage URI (s3://, gs://, file://)."""
    import pyarrow.fs

    pyarrow.fs.copy_files(source, destination)


def train_loop(payload: dict[str, Any]) -> None:
    """Train-loop-per-worker (or, for executor train_local, the Tune trial's loop): ``payload`` is built
    by ``trial.trial_payload``."""
    import ray.train

    from biollm_core.config.loader import load_config_dict
    from biollm_core.runner import run_experiment
    from biollm_platform.tracking.sinks import platform_sinks

    from .expand import TrialSpec
    from .proc_time import process_started_at

    worker_started_at = time.time()
    trial = TrialSpec.from_dict(payload["trial"])
    # executor train_local: this is the Tune trial's own process, where ray.train.* refuses to run
    in_tune = payload.get("executor") == "train_local"
    rank = 0 if in_tune else ray.train.get_context().get_world_rank()
    config = load_config_dict(trial.config, source=f"trial {trial.trial_id}")
    trial_uri = payload.get("trial_uri")
    if rank != 0:
        out_dir = Path(tempfile.mkdtemp(prefix=f"biollm-{trial.trial_id}-rank{rank}-"))
    elif trial_uri:  # artifacts live in object storage; work in a local staging copy
        out_dir = Path(tempfile.gettempdir()) / "biollm-sweeps" / payload["sweep_id"] / trial.trial_id
        if not out_dir.exists():
            out_dir.mkdir(parents=True)
            try:
                _sync(trial_uri, str(out_dir))
            except (FileNotFoundError, OSError):
                pass
    else:
        out_dir = Path(payload["trial_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    resume = _prepare_resume(out_dir, in_tune=in_tune)
    ray_sink = RayReportSink(
        rank, out_dir, payload.get("faults"), to_tune=in_tune
    )
    sinks: list[Any] = [ray_sink, *platform_sinks(
        config,
        out_dir=out_dir,
        run_config=trial.config,
        run_name=trial.trial_id,
        group=config.logging.wandb_group or payload["sweep_id"],
        extra_config={"sweep_id": payload["sweep_id"], "trial_id": trial.trial_id},
        rank=rank,
    )]
    try:
        engine_started_at = time.time()
        run_experiment(config, out_dir, sinks=sinks, resume=resume, progress=ray_sink.on_progress)
        if rank == 0:
            _record_timing(
                out_dir,
                {
                    "driver_process_started_at": payload.get("driver_process_started_at"),
                    "driver_started_at": payload.get("driver_started_at"),
                    "worker_process_started_at": process_started_at(),
                    "worker_started_at": worker_started_at,
                    "engine_started_at": engine_started_at,
                    "first_step_at": ray_sink.first_step_at,
                    "last_step_at": ray_sink.last_step_at,
                    "engine_ended_at": time.time(),
                    "report_s": ray_sink.report_s,
                    "reports": ray_sink.reports,
                    "resumed": resume,
                },
            )
    finally:
        if rank == 0 and trial_uri:
            _sync(str(out_dir), trial_uri)
        if rank != 0:
            shutil.rmtree(out_dir, ignore_errors=True)
