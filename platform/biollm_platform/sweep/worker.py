"""The Ray Train loop of one trial: run the CLS engine, report its evals and checkpoint steps to Ray.

Runs inside every Train worker. Rank 0 writes the trial's artifacts; other ranks run the same engine
into a scratch directory (the engine is single-process; ranks exist for backends that shard work) and
report in step, because `ray.train.report` is a collective. A restarted worker continues from the
trial's own checkpoints: in the sweep directory, or staged back from the storage URI (a fresh node).
Rank 0 counts its starts in ``attempts.jsonl`` (so Train's own restarts are counted) and, when the
engine raises, writes the cause to ``failure.json`` and the traceback to ``error.txt``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .report_sink import RayReportSink

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
    """Where this worker runs the engine: the trial directory, a staging copy of it, or scratch."""
    from . import uri_storage

    if rank != 0:
        return Path(tempfile.mkdtemp(prefix=f"biollm-{trial_id}-rank{rank}-"))
    if trial_uri := payload.get("trial_uri"):  # artifacts live in object storage; work in a local copy
        out_dir = Path(tempfile.gettempdir()) / "biollm-sweeps" / payload["sweep_id"] / trial_id
        if not out_dir.exists():  # a fresh node (or a first start): whatever the URI holds comes back
            uri_storage.stage(trial_uri, out_dir)
        return out_dir
    return Path(payload["trial_dir"])


def train_loop(payload: dict[str, Any]) -> None:
    """Train-loop-per-worker (or, for executor train_local, the Tune trial's loop): ``payload`` is built
    by ``trial.trial_payload``."""
    import ray.train

    from biollm_core.config.loader import load_config_dict
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
    rank = 0 if in_tune else ray.train.get_context().get_world_rank()
    config = load_config_dict(trial.config, source=f"trial {trial.trial_id}")
    trial_uri = payload.get("trial_uri")
    out_dir = _trial_dir(payload, trial.trial_id, rank)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_attempt = count_start(out_dir, payload.get("driver_run"))
    resume = _prepare_resume(out_dir)
    ray_sink = RayReportSink(to_tune=in_tune, context={"train_attempt": train_attempt})
    sinks: list[Any] = [ray_sink]
    if rank == 0 and trial_uri:
        sinks.append(uri_storage.MirrorSink(out_dir, trial_uri))
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
        run_experiment(config, out_dir, sinks=sinks, resume=resume, progress=ray_sink.on_progress)
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
        if rank != 0:
            shutil.rmtree(out_dir, ignore_errors=True)
