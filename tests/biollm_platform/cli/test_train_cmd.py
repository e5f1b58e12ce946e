"""`biollm train` in-process: --json, the default output directory per config, sinks, refusals before drawing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from biollm_core.config.loader import config_digest, load_config
from biollm_platform.cli.app import app

SHORT = ["train=cpu", "train.max_steps=6", "benchmark.switch_every=3", "benchmark.num_tasks=2", "benchmark.heldout_size=8",
         "train.eval_interval=3", "consolidation.sleep_min_interval=3", "consolidation.sleep_max_interval=3",
         "consolidation.min_sleep_steps=1", "consolidation.max_sleep_steps=1", "replay.capacity=32",
         "logging.checkpoint_interval=3"]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_json_is_one_object_on_stdout_and_the_default_dir_is_per_config(in_tmp: Path) -> None:
    result = CliRunner().invoke(app, ["train", *SHORT, "--json", "logging.use_tensorboard=true", "logging.use_csv=true"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # nothing else on stdout: the progress and logs are on stderr
    digest = config_digest(load_config([*SHORT, "logging.use_tensorboard=true", "logging.use_csv=true"]))
    assert data["out_dir"] == f"outputs/runs/cls-seed7-{digest[:8]}"
    assert data["summary"]["steps"] == 6 and "run cls-seed7" in result.stderr
    out = in_tmp / data["out_dir"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    with (out / "metrics.csv").open(newline="") as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [r["step"] for r in records]
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    evals = [r for r in records if "seen_acc" in r]
    assert [e.step for e in events.Scalars("seen_acc")] == [r["step"] for r in evals]
    assert [e.value for e in events.Scalars("seen_acc")] == pytest.approx([r["seen_acc"] for r in evals])

    other = CliRunner().invoke(app, ["train", *SHORT, "mode=nosleep", "seed=8", "--json", "--quiet"])
    assert other.exit_code == 0, other.output  # another config: another directory, not a refusal
    assert json.loads(other.stdout)["out_dir"].startswith("outputs/runs/nosleep-seed8-")


def test_the_same_config_again_is_refused_before_anything_is_drawn(in_tmp: Path) -> None:
    first = CliRunner().invoke(app, ["train", *SHORT, "--quiet"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, ["train", *SHORT])
    assert again.exit_code == 2
    assert again.stdout == "" and len(again.stderr.splitlines()) == 1
    assert "already holds a run; pass --resume to continue it, or --out DIR for a new one" in again.stderr
    assert "unique per resolved config" in again.stderr
    assert "run cls-seed7" not in again.stderr  # refused before the header and the progress bar
