"""A real engine trial tracked in W&B offline: read back with W&B's own reader, and no key leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_core.config.loader import config_to_dict, load_config
from biollm_core.runner import run_experiment
from biollm_platform.tracking.offline_reader import find_wandb_files, read_offline_run
from biollm_platform.tracking.wandb_sink import wandb_sink_from_config

FAKE_KEY = "f00dfeed" * 5  # 40 characters, like a W&B API key
SMALL = ["train=cpu", "benchmark.num_tasks=2", "benchmark.switch_every=20", "benchmark.heldout_size=32",
         "consolidation.sleep_min_interval=10", "consolidation.sleep_max_interval=10",
         "consolidation.min_sleep_steps=3", "consolidation.max_sleep_steps=3", "train.eval_interval=10",
         "replay.capacity=256", "logging.checkpoint_interval=20", "logging.use_wandb=true", "logging.wandb_mode=offline"]


def test_real_trial_is_readable_with_wandbs_reader_and_leaks_no_key(
    tmp_path: Path, wandb_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)  # a key in the environment must never reach a file
    config = load_config(SMALL)
    out = tmp_path / "cls-seed7"
    sink = wandb_sink_from_config(config.logging, out_dir=out, run_config=config_to_dict(config), run_name="cls-seed7",
                                  group="sweep-test", extra_config={"sweep_id": "sweep-test"})
    assert sink is not None
    summary = run_experiment(config, out, sinks=[sink])

    [wandb_file] = find_wandb_files(out)
    run = read_offline_run(wandb_file)
    assert (run.name, run.group) == ("cls-seed7", "sweep-test")
    assert run.config["seed"] == 7 and run.config["method"] == {"name": "cls"}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = run.metric_by_step("task_loss")
    assert sorted(losses) == [r["step"] for r in records] == list(range(1, 41))
    assert losses[40] == pytest.approx(records[-1]["task_loss"])
    assert run.summary["final_seen_acc_avg"] == pytest.approx(summary["final_seen_acc_avg"])
    names = {artifact.name for artifact in run.artifacts}
    assert any(name.startswith("model") for name in names), names
    final_model = [a for a in run.artifacts if "final" in a.aliases]
    assert final_model and "latest" in final_model[-1].aliases and "step-40" in final_model[-1].aliases
    assert any("config" in name for name in names) and any("metadata" in name for name in names)

    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), f"API key written to {path}"
