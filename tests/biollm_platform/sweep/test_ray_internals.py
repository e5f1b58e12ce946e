"""The trial driver's Train trainer: Train's default callbacks, minus the dataset actor when unused."""

from __future__ import annotations

from pathlib import Path

from ray.train import RunConfig, ScalingConfig
from ray.train.backend import BackendConfig
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

from biollm_platform.sweep.trial import trainer_class


def _loop(config: dict) -> None:  # never run: the trainers below are only built
    pass


def _trainer(base: type, tmp_path: Path, **kwargs: object) -> DataParallelTrainer:
    return base(
        _loop,
        train_loop_config={},
        backend_config=BackendConfig(),
        scaling_config=ScalingConfig(num_workers=1),
        run_config=RunConfig(name="t", storage_path=str(tmp_path)),
        **kwargs,
    )


def test_no_dataset_actor_without_datasets(tmp_path: Path) -> None:
    ours = _trainer(trainer_class(), tmp_path)
    theirs = _trainer(DataParallelTrainer, tmp_path)
    ours_callbacks = [type(c) for c in ours._create_default_callbacks()]
    theirs_callbacks = [type(c) for c in theirs._create_default_callbacks()]
    assert DatasetsCallback in theirs_callbacks  # what Train V2 would start a DatasetManager actor for
    assert ours_callbacks == [c for c in theirs_callbacks if c is not DatasetsCallback]
    assert isinstance(ours, DataParallelTrainer)


def test_datasets_keep_their_callback(tmp_path: Path) -> None:
    import ray.data

    trainer = _trainer(trainer_class(), tmp_path, datasets={"train": ray.data.range(4)})
    assert DatasetsCallback in [type(c) for c in trainer._create_default_callbacks()]


def test_the_torch_trainer_for_several_workers() -> None:
    from ray.train.torch import TorchTrainer

    assert issubclass(trainer_class(torch_backend=True), TorchTrainer)
