"""Each use of Ray's private API (sweep/ray_internals.py) is active on the pinned Ray.

These tests fail when a Ray upgrade moves what a seam touches: the seam then falls back to public
behaviour (correct, slower or less informative), and the failure says which one to revisit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ray
from ray.train import RunConfig, ScalingConfig
from ray.train.backend import BackendConfig
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

from biollm_platform.sweep import ray_internals
from biollm_platform.sweep.ray_internals import engine_trainer_class


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


def test_pinned_ray() -> None:
    assert ray.__version__ == "2.60.0"  # the version these seams were read against (pyproject pins it)


def test_no_dataset_actor_without_datasets(tmp_path: Path) -> None:
    engine_class = engine_trainer_class()
    assert engine_class is not DataParallelTrainer  # the seam is active, not its fallback
    ours = _trainer(engine_class, tmp_path)
    theirs = _trainer(DataParallelTrainer, tmp_path)
    ours_callbacks = [type(c) for c in ours._create_default_callbacks()]
    theirs_callbacks = [type(c) for c in theirs._create_default_callbacks()]
    assert DatasetsCallback in theirs_callbacks  # what Train V2 would start a DatasetManager actor for
    assert ours_callbacks == [c for c in theirs_callbacks if c is not DatasetsCallback]
    assert isinstance(ours, DataParallelTrainer)


def test_datasets_keep_their_callback(tmp_path: Path) -> None:
    import ray.data

    trainer = _trainer(engine_trainer_class(), tmp_path, datasets={"train": ray.data.range(4)})
    assert DatasetsCallback in [type(c) for c in trainer._create_default_callbacks()]


def test_the_torch_trainer_for_several_workers() -> None:
    from ray.train.torch import TorchTrainer

    assert issubclass(engine_trainer_class(torch_backend=True), TorchTrainer)
    assert engine_trainer_class(torch_backend=True) is not TorchTrainer


def test_loopback_switch_is_what_ray_reads() -> None:
    """Ray's constant behind the loopback-only local cluster exists and follows the variable."""
    code = (
        "import os; os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'] = '0'\n"
        "from ray._private import ray_constants, services\n"
        "assert ray_constants.ENABLE_RAY_CLUSTER is False\n"
        "print(services.get_node_ip_address())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "127.0.0.1"


def test_uv_run_switch_is_what_ray_init_reads() -> None:
    """In a process that imported Ray before the switch (as test collection does), the switch still
    reaches the constant ``ray.init`` consults when it decides to ship the working directory."""
    import inspect

    from ray._private import worker

    assert "ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV" in inspect.getsource(worker._maybe_modify_runtime_env)
    code = (
        "from ray._private import ray_constants, worker\n"
        "assert ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV is True\n"
        "from biollm_platform.sweep.ray_internals import keep_workers_in_this_environment\n"
        "assert keep_workers_in_this_environment() is True\n"
        "assert ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV is False\n"
        "assert worker._maybe_modify_runtime_env({}, False) == {}\n"  # nothing shipped, even under `uv run`
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != ray_internals.UV_HOOK_ENV}
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    code = (  # a user's own setting wins
        "from biollm_platform.sweep.ray_internals import keep_workers_in_this_environment\n"
        "from ray._private import ray_constants\n"
        "assert keep_workers_in_this_environment() is False and ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV is True\n"
    )
    env[ray_internals.UV_HOOK_ENV] = "1"
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)


def test_autoscaler_shapes_and_auto_address(monkeypatch) -> None:  # noqa: ANN001
    from ray._private import services
    from ray._private.state import state

    assert callable(state.get_cluster_config)  # the autoscaler's node types come from here
    assert ray_internals.autoscaler_node_shapes() == []  # no cluster joined in this process: none
    assert callable(services.get_ray_address_from_environment)
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    assert ray_internals.resolve_auto_address() == "10.1.2.3:6379"


def test_dashboard_url_seam() -> None:
    from ray._private import worker

    assert hasattr(worker, "_global_node")  # where a joined process finds its dashboard's URL


def test_token_header_seam() -> None:
    code = "from biollm_platform.sweep.ray_internals import token_auth_headers; print(token_auth_headers())"
    env = {**__import__("os").environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "a" * 64}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert f"Bearer {'a' * 64}" in out.stdout  # the seam is active: the header Ray's own clients send
