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
from .schema import SweepSpec

CONTROLLER_FAILURE_LIMIT = 2  # Train's default is unlimited: a worker group that never starts retried forever


def trial_payload(
    spec: SweepSpec,
    trial: TrialSpec,
    *,
    sweep_id: str,
    trial_dir: str,
    ray_storage: str,
    trial_uri: str | None = None,
    faults: dict[str, int | None] | None = None,
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
        "faults": faults or {},
    }


def trial_driver(config: dict[str, Any]) -> None:
    """Tune function trainable: run one trial's Train run to the end (raises if it fails for good)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.backend import BackendConfig
    from ray.tune.integration.ray_train import TuneReportCallback

    from .worker import train_loop

    payload = {**config["trial"], "driver_started_at": time.time(), "driver_process_started_at": process_started_at()}
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
        trainer = trainer_class()(
            train_loop,
            train_loop_config=payload,
            backend_config=BackendConfig(),
            scaling_config=scaling,
            run_config=run_config,
        )
    else:  # gloo on CPU, nccl on GPU: TorchTrainer's choice from use_gpu
        from ray.train.torch import TorchConfig  # imports torch: only where a process group is wanted

        trainer = trainer_class(torch_backend=True)(
            train_loop,
            train_loop_config=payload,
            torch_config=TorchConfig(timeout_s=600),
            scaling_config=scaling,
            run_config=run_config,
        )
    trainer.fit()


def trainer_class(*, torch_backend: bool = False) -> type:
    """Ray Train's ``DataParallelTrainer`` (or ``TorchTrainer``), minus the dataset actor when unused.

    Train V2 starts a ``DatasetManager`` actor for every run, datasets or not: one more Python process
    per trial that imports Ray Data, for an engine that reads no Ray Dataset. Without datasets its
    callback is dropped; workers then get no dataset shard provider, which Train allows (an optional
    argument of the worker's train context). Everything else (backend, placement-group cleaner, user
    callbacks) is Train's own default.
    """
    from ray.train.v2._internal.callbacks.datasets import DatasetsCallback

    if torch_backend:
        from ray.train.torch import TorchTrainer as base
    else:
        from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer as base

    class EngineTrainer(base):  # type: ignore[misc,valid-type]
        def _create_default_callbacks(self) -> list[Any]:
            callbacks = super()._create_default_callbacks()
            if self.datasets:
                return callbacks
            return [c for c in callbacks if not isinstance(c, DatasetsCallback)]

    EngineTrainer.__name__ = EngineTrainer.__qualname__ = f"Engine{base.__name__}"
    return EngineTrainer


def driver_resources(spec: SweepSpec) -> dict[str, float]:
    """What a trial's driver reserves (besides a driver slot): nothing, or a worker's share in local mode."""
    if spec.resources.executor != "train_local":
        return {"cpu": 0}
    return {"cpu": spec.resources.cpus_per_worker} | (
        {"gpu": spec.resources.gpus_per_worker} if spec.resources.gpus_per_worker else {}
    )
