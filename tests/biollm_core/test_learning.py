"""Learning that is real: on the cued toy stream the hippocampus learns each task while awake, and only
sleep moves that knowledge into the neocortex (the base model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_core.config.loader import load_config
from biollm_core.runner import run_experiment

CHANCE = 1 / 64  # model.vocab_size of the toy preset
# Two tasks of the train=cpu preset: the first full sleep/refresh cycles, at half the cost of the stream.
STREAM = ["train=cpu", "benchmark.num_tasks=2"]


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The preset's CLS learner (refresh.policy=absorbed) on two tasks, shared by the tests below."""
    out = tmp_path_factory.mktemp("learning") / "sleep"
    run_experiment(load_config([*STREAM, "method=cls"]), out)
    return out


@pytest.mark.slow
def test_sleep_consolidates_into_the_base_model_and_nosleep_does_not(cls_run: Path, tmp_path: Path) -> None:
    sleep = json.loads((cls_run / "summary.json").read_text())
    nosleep = run_experiment(load_config([*STREAM, "method=nosleep"]), tmp_path / "nosleep")
    for run_dir in (cls_run, tmp_path / "nosleep"):
        # Awake, the combined model masters the current task by the end of every segment (its last batch).
        assert all(r["train_acc"] > 0.9 for r in _rows(run_dir) if "segment_end" in r)
    # Consolidation: after sleeps the neocortex alone answers the first task far above chance...
    assert sleep["base_accuracy_matrix"][-1][0] > 0.5
    assert sleep["sleep_count"] > 0 and sleep["base_updates_in_sleep"] > 0
    # ...while without sleep it never trains and stays at chance.
    assert max(nosleep["base_accuracy_matrix"][-1]) < 4 * CHANCE


@pytest.mark.slow
def test_the_baselines_keep_the_fields_known_ordering(tmp_path: Path) -> None:
    """Fine-tuning forgets, replay holds, joint training is the ceiling (two tasks of the toy stream)."""
    final = {
        m: run_experiment(load_config([*STREAM, f"method={m}"]), tmp_path / m)["accuracy_matrix"][-1] for m in ("finetune", "er", "joint")
    }
    assert final["finetune"][1] > 0.9 and final["finetune"][0] < 0.3  # learns the new task, forgets the first
    assert min(final["er"]) > 0.9  # a reservoir of replay.capacity episodes holds both
    assert min(final["joint"]) > 0.9


@pytest.mark.slow
def test_the_wake_path_does_no_harm_after_the_first_sleep(cls_run: Path) -> None:
    """Issue 11's target on every evaluated row (segment ends and anytime rows) after the first sleep:
    the answering model is at least as good as its own neocortex, within 0.02."""
    rows = [r for r in _rows(cls_run) if "seen_acc" in r and r.get("sleep_count", 0) > 0]
    assert rows and min(r["seen_acc"] - r["base_seen_acc"] for r in rows) >= -0.02


@pytest.mark.slow
def test_absorbed_refresh_matches_refreshing_all_at_every_segment_end(cls_run: Path, tmp_path: Path) -> None:
    """Spec §6: probing the latest episodes against their labels recycles what the neocortex absorbed,
    so gating the refresh loses nothing against resetting every expert."""
    run_experiment(load_config([*STREAM, "method=cls", "consolidation.refresh.policy=all"]), tmp_path / "all")
    absorbed, every = ([r for r in _rows(d) if "segment_end" in r and "seen_acc" in r] for d in (cls_run, tmp_path / "all"))
    assert [r["step"] for r in absorbed] == [r["step"] for r in every] and absorbed
    for a, b in zip(absorbed, every, strict=True):
        assert abs(a["seen_acc"] - b["seen_acc"]) <= 0.02, (a["step"], a["seen_acc"], b["seen_acc"])
    summary = json.loads((cls_run / "summary.json").read_text())
    assert summary["refresh_count_total"] > 0  # absorbed did recycle experts, it is not "off"
