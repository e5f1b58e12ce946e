"""The Tune trial: a driver function that starts one Ray Train run of the engine and waits for it.

With Train V2 a Tune trial cannot be a Trainer; it is a function that builds a ``TorchTrainer`` and
calls ``fit()``, and the workers' reports reach Tune through ``TuneReportCallback``. Every attempt
gets its own Train run name (reused names hung here); continuity between attempts comes from the
trial's own checkpoints directory, which the worker resumes from.

Executors (``resources.executor``): ``train_workers`` (default) starts a Train worker group per trial;
``train_local`` runs the same train loop in this driver process (no Train controller or worker actors),
reporting with ``ray.tune.report``; a failed attempt is retried by Tune. Train V2's own local mode
(``ScalingConfig(num_workers=0)``) does not serve here: inside a Tune trial ``ray.train.get_context``,
``get_checkpoint`` and ``report`` raise (``requires_train_worker(raise_in_tune_session=True)``), and its
``LocalTrainFnUtils.report`` only keeps the last metrics, with no callbacks to forward them to Tune.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from .expand import TrialSpec
from .proc_time import process_started_at
from .ray_internals import engine_trainer_class
from .schema import SweepSpec

CONTROLLER_FAILURE_LIMIT = 2  # Train's default is unlimited: a worker group that never starts retried forever
DRIVER_MEMORY_BYTES = 1 << 20  # the train_workers driver's reservation of Ray's logical `memory` (see below)


def trial_payload(
    spec: SweepSpec,
    trial: TrialSpec,
    *,
    sweep_id: str,
    trial_dir: str,
    ray_storage: str,
    trial_uri: str | None = None,
    extra_sinks: list[str] | None = None,
) -> dict[str, Any]:
    """Everything a trial driver and its workers need, as JSON-safe data (Tune's param space)."""
    return {
        "sweep_id": sweep_id,
        "trial": trial.to_dict(),
        "trial_dir": trial_dir,
        "trial_uri": trial_uri,
        "ray_storage": ray_storage,
        "executor": spec.resources.executor,
        "workers": spec.resources.workers_per_trial,
        "cpus_per_worker": spec.resources.cpus_per_worker,
        "gpus_per_worker": spec.resources.gpus_per_worker,
        "retries": spec.retries,
        "keep_checkpoints": int(trial.config.get("logging", {}).get("checkpoint_keep_last", 2)),
        "extra_sinks": list(extra_sinks or []),  # extra_sinks.py: `module:factory` specs
        "driver_run": None,  # set by the driver: one id per Tune attempt
    }


def trial_driver(config: dict[str, Any]) -> None:
    """Tune function trainable: run one trial's Train run to the end (raises if it fails for good)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.backend import BackendConfig
    from ray.tune.integration.ray_train import TuneReportCallback

    from .worker import train_loop

    payload = {
        **config["trial"],
        "driver_run": uuid.uuid4().hex,  # the worker counts its starts (Train restarts) per driver run
        "driver_started_at": time.time(),
        "driver_process_started_at": process_started_at(),
    }
    trial_id = payload["trial"]["trial_id"]
    gpus = float(payload["gpus_per_worker"])
    resources = {"CPU": float(payload["cpus_per_worker"])} | ({"GPU": gpus} if gpus else {})
    workers = int(payload["workers"])
    if payload.get("executor") == "train_local":  # the loop here; this driver holds the worker's resources
        train_loop(payload)
        return
    scaling = ScalingConfig(num_workers=workers, use_gpu=gpus > 0, resources_per_worker=resources)
    run_config = RunConfig(
        name=f"{trial_id}-{uuid.uuid4().hex[:8]}",
        storage_path=payload["ray_storage"],
        failure_config=FailureConfig(
            max_failures=int(payload["retries"]), controller_failure_limit=CONTROLLER_FAILURE_LIMIT
        ),
        checkpoint_config=CheckpointConfig(num_to_keep=int(payload["keep_checkpoints"])),
        callbacks=[TuneReportCallback()],
    )
    if workers == 1:
        # One worker needs no torch.distributed process group; TorchTrainer always sets one up (gloo or
        # nccl), so a single-worker trial runs on the data-parallel trainer with Train's no-op backend.
        trainer = engine_trainer_class()(
            train_loop,
            train_loop_config=payload,
            backend_config=BackendConfig(),
            scaling_config=scaling,
            run_config=run_config,
        )
    else:  # gloo on CPU, nccl on GPU: TorchTrainer's choice from use_gpu
        from ray.train.torch import TorchConfig  # imports torch: only where a process group is wanted

        trainer = engine_trainer_class(torch_backend=True)(
            train_loop,
            train_loop_config=payload,
            torch_config=TorchConfig(timeout_s=600),
            scaling_config=scaling,
            run_config=run_config,
        )
    trainer.fit()


def driver_resources(spec: SweepSpec) -> dict[str, float]:
    """What a trial's driver reserves: for train_local the worker's share; else a sliver of `memory`.

    A train_workers driver only starts a Train run and waits, so it must hold no CPU or GPU a worker
    needs (on 2 cores a driver reserving a CPU beside a 1-CPU worker left worker groups waiting for
    resources that never came). Ray refuses an all-zero request, so the driver asks for a little of
    `memory`, a resource every Ray node declares (stock `ray start`, KubeRay) and no Train worker here
    asks for: it never competes with workers, on any cluster, with no custom resource to set up.
    """
    if spec.resources.executor != "train_local":
        return {"cpu": 0, "memory": DRIVER_MEMORY_BYTES}
    return {"cpu": spec.resources.cpus_per_worker} | (
        {"gpu": spec.resources.gpus_per_worker} if spec.resources.gpus_per_worker else {}
    )
