"""The sweep tests' real Ray: one local cluster for the session, a tiny sweep file and its reference run."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from biollm_platform.sweep.extra_sinks import SINKS_ENV

from .fault_sink import fault_spec

# Test-sized toy stream: 2 tasks x 10 wake steps, a 3-step sleep after each, checkpoints every 10 steps.
TINY_OVERRIDES = [
    "benchmark.num_tasks=2",
    "benchmark.switch_every=10",
    "benchmark.heldout_size=32",
    "train.eval_interval=5",
    "consolidation.sleep_min_interval=10",
    "consolidation.sleep_max_interval=10",
    "consolidation.min_sleep_steps=3",
    "consolidation.max_sleep_steps=3",
    "replay.capacity=256",
    "logging.checkpoint_interval=5",
    "logging.checkpoint_keep_last=10",
]
FIGURES = (
    "final_seen_acc_avg",
    "final_forgetting",
    "final_bwt",
    "avg_incremental_acc",
    "anytime_acc",
    "final_base_seen_acc_avg",
    "final_old_task_loss",
    "sleep_count",
    "steps",
    "accuracy_matrix",
    "base_accuracy_matrix",
)


def tiny_sweep_file(repo_root: Path, directory: Path, extra_overrides: tuple[str, ...] = (), **changes: object) -> Path:
    """sweeps/toy_smoke.yaml cut to one seed and the tiny stream, storage under ``directory``."""
    spec = yaml.safe_load((repo_root / "sweeps" / "toy_smoke.yaml").read_text())
    spec["grid"]["seed"] = [7]
    spec["base"]["overrides"] += [*TINY_OVERRIDES, *extra_overrides]
    spec["storage"] = str(directory / "sweeps")
    spec.update(changes)
    path = directory / "tiny.yaml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def figures(trial_dir: Path) -> dict[str, object]:
    summary = json.loads((trial_dir / "summary.json").read_text())
    return {key: summary.get(key) for key in FIGURES}  # sleep_count: cls only


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A real local Ray (2 CPUs, no custom resource) shared by the session, started as a sweep starts its
    own (loopback only), without the dashboard; yields its GCS address."""
    from biollm_platform.sweep.local_ray import connect, shutdown

    handle = connect(None, num_cpus=2, include_dashboard=False)
    yield handle.address
    shutdown(handle)


@pytest.fixture(scope="session")
def reference_run(ray_cluster: str, repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny sweep (sleep and nosleep, seed 7) through the CLI; returns its directory.

    To keep the suite short it doubles as the worker-fault run: cls-seed7's worker process dies once at
    step 7 and is retried from its step-5 checkpoint (test_faults checks that). test_remote compares an
    uninterrupted run with it, so equal figures show both reproducibility and an exact retry. Its trials
    also write TensorBoard events and metrics.csv (test_trial_sinks checks the retry left no step twice).
    """
    from typer.testing import CliRunner

    from biollm_platform.cli.sweep import app

    directory = tmp_path_factory.mktemp("reference")
    os.environ[SINKS_ENV] = fault_spec("cls-seed7", "exit", 7)  # read at submit
    try:
        sweep_file = tiny_sweep_file(
            repo_root, directory, ("logging.use_tensorboard=true", "logging.use_csv=true"), retries=1
        )
        result = CliRunner().invoke(app, ["submit", str(sweep_file), "--address", ray_cluster, "--json"])
    finally:
        os.environ.pop(SINKS_ENV)
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (directory / "sweeps").iterdir()
    (directory / "submit-stdout.txt").write_text(result.stdout)  # --json: test_trial_sinks reads it back
    return sweep_dir


@pytest.fixture(scope="session")
def two_worker_sweep(ray_cluster: str, repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """The tiny sweep with 2 Train workers a trial (gloo, 1 CPU each), retries 1, and a fault in each
    trial: cls-seed7's rank 1 exits at step 7 (the group restarts from its step-5 checkpoint and
    finishes: test_data_parallel_trial), nosleep-seed7's rank 0 raises at step 3 in both attempts
    (it fails for good: test_faults). One sweep for both keeps the suite short.
    Returns the sweep directory, submit's exit code and its output."""
    from typer.testing import CliRunner

    from biollm_platform.cli.sweep import app

    directory = tmp_path_factory.mktemp("two_workers")
    os.environ[SINKS_ENV] = ",".join([fault_spec("cls-seed7", "exit", 7, on_rank=1), fault_spec("nosleep-seed7", "raise", 3)])
    os.environ["COLUMNS"] = "500"  # Rich folds lines at 80 columns without a terminal
    try:
        sweep_file = tiny_sweep_file(repo_root, directory, retries=1,
                                     resources={"workers_per_trial": 2, "cpus_per_worker": 1, "gpus_per_worker": 0})
        result = CliRunner().invoke(app, ["submit", str(sweep_file), "--address", ray_cluster])
    finally:
        os.environ.pop(SINKS_ENV)
        os.environ.pop("COLUMNS")
    (sweep_dir,) = (directory / "sweeps").iterdir()
    return sweep_dir, result.exit_code, result.output


@pytest.fixture(scope="session")
def train_local_sweep(ray_cluster: str, repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """The tiny sweep with the train_local executor, one trial at a time, nosleep first in the grid (cls
    is the longer trial), W&B offline: test_bench_sweep compares its figures with the reference run's,
    test_wandb_sweep reads its W&B runs. One sweep for both keeps the suite short.
    Returns the sweep directory, submit's exit code and its output."""
    from typer.testing import CliRunner

    from biollm_platform.cli.sweep import app

    directory = tmp_path_factory.mktemp("train_local")
    resources = {"workers_per_trial": 1, "cpus_per_worker": 1, "gpus_per_worker": 0, "executor": "train_local",
                 "max_concurrent_trials": 1}
    sweep_file = tiny_sweep_file(repo_root, directory, resources=resources, grid={"seed": [7], "method": ["nosleep", "cls"]},
                                 wandb={"enabled": True, "mode": "offline", "project": "biollm-test"})
    result = CliRunner().invoke(app, ["submit", str(sweep_file), "--address", ray_cluster])
    (sweep_dir,) = (directory / "sweeps").iterdir()
    return sweep_dir, result.exit_code, result.output


@pytest.fixture
def clean_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
