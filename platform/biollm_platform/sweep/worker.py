"""The Ray Train loop of one trial: run the engine, report its evals and checkpoint steps to Ray.

Runs inside every Train worker. With ``workers_per_trial`` W > 1 the workers are the ranks of one
data-parallel run: ``TorchTrainer`` has joined them in a torch.distributed process group (gloo on
CPU, nccl on GPU) before this loop starts, and the engine splits every global batch across them
(``biollm_core/distributed.py``). Rank 0 writes the trial's artifacts; rank r > 0 writes only its
part of each checkpoint (``checkpoints/rank-r``) and reports in step, because `ray.train.report` is a
barrier across the workers. A restarted worker group continues from the trial's own checkpoints: in
the sweep directory, or staged back from the storage URI (a fresh node). Rank 0 counts its starts in
``attempts.jsonl`` (so Train's own restarts are counted) and, when the engine raises, writes the
cause to ``failure.json`` and the traceback to ``error.txt``.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .report_sink import MIN_EVAL_REPORT_INTERVAL_S, RayReportSink

ATTEMPTS = "attempts.jsonl"
FAILURE = "failure.json"
TRACEBACK = "error.txt"


def _prepare_resume(out_dir: Path) -> bool:
    """True when the trial continues from a checkpoint in its directory."""
    from biollm_core.checkpoint import latest_checkpoint

    checkpoints = out_dir / "checkpoints"
    if latest_checkpoint(checkpoints) is not None:
        return True
    # Killed before its first checkpoint: start over (the engine refuses a half-written run otherwise)
    shutil.rmtree(checkpoints, ignore_errors=True)
    (out_dir / "summary.json").unlink(missing_ok=True)
    return False


def count_start(out_dir: Path, driver_run: str | None) -> int:
    """Record this worker start in attempts.jsonl; returns its number within the driver run (1, 2, ...)."""
    path = out_dir / ATTEMPTS
    starts = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    number = 1 + sum(1 for start in starts if start.get("driver_run") == driver_run)
    with path.open("a") as handle:
        handle.write(json.dumps({"driver_run": driver_run, "train_attempt": number, "at": time.time()}) + "\n")
    return number


def record_failure(out_dir: Path, error: BaseException, train_attempt: int) -> None:
    """failure.json (type, message, the start that raised) and error.txt (the traceback) in the trial dir."""
    from biollm_core.artifacts import write_json_atomic

    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    (out_dir / TRACEBACK).write_text("".join(traceback.format_exception(error)))
    write_json_atomic(
        out_dir / FAILURE,
        {
            "type": type(error).__name__,
            "message": (lines[-1] if lines else "")[:500],
            "train_attempt": train_attempt,
            "traceback": TRACEBACK,
            "at": time.time(),
        },
    )


def _record_timing(out_dir: Path, attempt: dict[str, Any]) -> None:
    """Append this attempt's timestamps to ray_timing.json (Ray's fixed cost per trial comes from it)."""
    path = out_dir / "ray_timing.json"
    attempts = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*attempts, attempt], indent=1))


def _trial_dir(payload: dict[str, Any], trial_id: str, rank: int) -> Path:
    """Where this worker runs the engine: the trial directory (every rank), or a staging copy of it."""
    from . import uri_storage

    if trial_uri := payload.get("trial_uri"):  # artifacts live in object storage; work in a local copy
        out_dir = Path(tempfile.gettempdir()) / "biollm-sweeps" / payload["sweep_id"] / trial_id
        if rank != 0:  # its own copy, staged afresh at every start: rank 0's checkpoints as the URI has them
            out_dir = out_dir.with_name(f"{trial_id}-rank-{rank}")
            shutil.rmtree(out_dir, ignore_errors=True)
        if not out_dir.exists():  # a fresh node (or a first start): whatever the URI holds comes back
            uri_storage.stage(trial_uri, out_dir)
        return out_dir
    return Path(payload["trial_dir"])


def process_group(context: Any) -> Any:
    """The engine's ``Distributed`` for this Train worker: its rank in the group TorchTrainer started.

    A single worker runs on Train's no-op backend (no process group): W = 1. Several workers must find
    the group initialised with the context's rank and size, or the trial fails here, not in a collective."""
    from biollm_core.distributed import Distributed

    size, rank = context.get_world_size(), context.get_world_rank()
    if size == 1:
        return Distributed()
    group = Distributed.from_process_group()
    if (group.rank, group.world_size) != (rank, size):
        raise RuntimeError(f"Train worker {rank} of {size} found no matching torch.distributed group "
                           f"(rank {group.rank} of {group.world_size}): the trial must run on TorchTrainer")
    return group


def train_loop(payload: dict[str, Any]) -> None:
    """Train-loop-per-worker (or, for executor train_local, the Tune trial's loop): ``payload`` is built
    by ``trial.trial_payload``."""
    import ray.train

    from biollm_core.config.loader import load_config_dict
    from biollm_core.distributed import Distributed
    from biollm_core.runner import run_experiment
    from biollm_platform.tracking.sinks import platform_sinks

    from . import uri_storage
    from .expand import TrialSpec
    from .extra_sinks import build_sinks
    from .proc_time import process_started_at

    worker_started_at = time.time()
    trial = TrialSpec.from_dict(payload["trial"])
    # executor train_local: this is the Tune trial's own process, where ray.train.* refuses to run
    in_tune = payload.get("executor") == "train_local"
    distributed = Distributed() if in_tune else process_group(ray.train.get_context())
    rank = distributed.rank
    config = load_config_dict(trial.config, source=f"trial {trial.trial_id}")
    trial_uri = payload.get("trial_uri")
    out_dir = _trial_dir(payload, trial.trial_id, rank)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        train_attempt = count_start(out_dir, payload.get("driver_run"))
        resume = _prepare_resume(out_dir)
    else:  # rank 0's count and resume decide (the engine takes rank 0's checkpoint on every rank)
        train_attempt, resume = 0, True
    # With several ranks a report is a barrier: eval reports on a clock could differ between ranks and
    # leave one waiting, so they report at checkpoints only (which every rank reaches at the same step).
    interval = MIN_EVAL_REPORT_INTERVAL_S if distributed.world_size == 1 else math.inf
    ray_sink = RayReportSink(to_tune=in_tune, context={"train_attempt": train_attempt}, min_eval_interval_s=interval)
    sinks: list[Any] = [ray_sink]
    if trial_uri:
        sinks.append(uri_storage.MirrorSink(out_dir, trial_uri, rank))
    sinks += platform_sinks(
        config,
        out_dir=out_dir,
        run_config=trial.config,
        run_name=trial.trial_id,
        group=config.logging.wandb_group or payload["sweep_id"],
        extra_config={"sweep_id": payload["sweep_id"], "trial_id": trial.trial_id},
        rank=rank,
    )
    sinks += build_sinks(payload.get("extra_sinks") or [], trial_id=trial.trial_id, out_dir=out_dir, rank=rank)
    try:
        engine_started_at = time.time()
        run_experiment(config, out_dir, sinks=sinks, resume=resume, progress=ray_sink.on_progress, distributed=distributed)
        if rank == 0:
            (out_dir / FAILURE).unlink(missing_ok=True)  # an earlier attempt's cause no longer applies
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
                    "train_attempt": train_attempt,
                },
            )
    except Exception as error:
        if rank == 0:
            record_failure(out_dir, error, train_attempt)
        raise
    finally:
        if rank == 0 and trial_uri:
            uri_storage.mirror(out_dir, trial_uri)
