"""Writes a small, realistic sweep directory from known numbers (5 seeds x cls/nosleep/er, 4 tasks).

The summary values are chosen so the paired statistics can be worked out by hand (see test_aggregate).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SEEDS = (7, 42, 123, 5, 11)
METHODS = ("cls", "nosleep", "er")
STEPS_PER_TASK, TASKS, EVAL_INTERVAL = 50, 4, 10

# metric -> method -> per-seed values (seeds 7, 42, 123, 5, 11)
KNOWN: dict[str, dict[str, tuple[float, ...]]] = {
    # cls - nosleep: (0.6, 0.8, 0.7, 0.7, 0.7): mean 0.7, sd sqrt(0.02 / 4); er - nosleep: (0.05, 0, 0.05, 0, 0)
    "final_seen_acc_avg": {"cls": (0.9, 1.0, 0.95, 0.95, 0.95), "nosleep": (0.3, 0.2, 0.25, 0.25, 0.25),
                           "er": (0.35, 0.2, 0.3, 0.25, 0.25)},
    # cls - nosleep: (0.1, 0.2, -0.1, 0.1, 0.2): mean 0.1, sd sqrt(0.06 / 4), exact sign-flip p 4/32
    "anytime_acc": {"cls": (0.6, 0.7, 0.4, 0.6, 0.7), "nosleep": (0.5, 0.5, 0.5, 0.5, 0.5), "er": (0.5, 0.5, 0.5, 0.5, 0.5)},
    # lower is better; cls - nosleep: (-0.6, -0.7, -0.5, -0.6, -0.6)
    "final_forgetting": {"cls": (0.02, 0.0, 0.04, 0.02, 0.02), "nosleep": (0.62, 0.7, 0.54, 0.62, 0.62),
                         "er": (0.6, 0.7, 0.5, 0.6, 0.6)},
    # every cls - nosleep delta exactly 0.25 (binary fractions): sd 0, d_z +inf
    "avg_incremental_acc": {"cls": (0.75, 0.625, 0.5, 0.75, 0.5), "nosleep": (0.5, 0.375, 0.25, 0.5, 0.25),
                            "er": (0.5, 0.375, 0.25, 0.5, 0.25)},
    "final_bwt": {"cls": (0.0, -0.2, 0.1, 0.0, 0.0), "nosleep": (-0.5, -0.1, -0.1, -0.3, -0.3), "er": (-0.4, -0.1, -0.1, -0.3, -0.3)},
    "final_base_seen_acc_avg": {"cls": (0.97, 0.99, 0.98, 0.97, 0.99), "nosleep": (0.015, 0.014, 0.016, 0.015, 0.015),
                                "er": (0.35, 0.2, 0.3, 0.25, 0.25)},
}


def trial_summary(method: str, seed: int) -> dict[str, Any]:
    """A summary.json like the engine's, with the KNOWN values for this trial."""
    index = SEEDS.index(seed) if seed in SEEDS else 0
    summary: dict[str, Any] = {name: values[method][index] for name, values in KNOWN.items()}
    summary.update(
        final_old_task_loss=0.4 if method == "cls" else 3.1,
        memory_episodes=0 if method == "nosleep" else 4096,
        gradient_steps=1600 if method == "cls" else 800,
        samples_processed=51200 if method == "cls" else 25600,
        wall_time_s=35.0 + index,
        tokens_per_s=5000.0 - 100 * index,
        steps=STEPS_PER_TASK * TASKS,
        method=method,
        seed=seed,
        run_name=f"{method}-seed{seed}",
        accuracy_matrix=[[1.0, 0.0], [0.9 if method != "nosleep" else 0.1, 1.0]],
        base_accuracy_matrix=[[1.0, 0.0], [0.9, 1.0]],
    )
    if method == "cls":
        summary.update(sleep_count=8, refresh_count_total=16, base_updates_in_sleep=400)
    return summary


def metrics_records(method: str, seed: int) -> list[dict[str, Any]]:
    """Per-step records: nosleep's old-task loss climbs with every task, cls's stays low; cls sleeps."""
    records = []
    wobble = (0.0, 0.15, -0.1, 0.05, -0.05)[SEEDS.index(seed)] if seed in SEEDS else 0.0  # seed-to-seed spread
    for step in range(1, STEPS_PER_TASK * TASKS + 1):
        task_id = (step - 1) // STEPS_PER_TASK
        within = ((step - 1) % STEPS_PER_TASK) / STEPS_PER_TASK
        old_loss = 0.0 if task_id == 0 else (0.3 + 0.1 * within if method != "nosleep" else 1.0 * task_id + within)
        record: dict[str, Any] = {
            "step": step,
            "task_id": task_id,
            "task_loss": 2.0 * math.exp(-5 * within) + 0.1,
            "old_task_loss": old_loss + wobble,
            "forgetting_index": 0.0,
        }
        if method == "cls":
            record["sleep_count"] = step // 25
            record["sleep_pressure"] = (step % 25) / 25
        if step % EVAL_INTERVAL == 0:
            seen = task_id + 1
            accuracy = 1.0 if method != "nosleep" else (1.0 + (seen - 1) * 0.05) / seen
            record["seen_acc"] = min(1.0, accuracy - wobble / 3)
            record["base_seen_acc"] = min(1.0, accuracy - wobble / 2)
        records.append(record)
    return records


def write_trial(sweep_dir: Path, method: str, seed: int) -> str:
    out = sweep_dir / f"{method}-seed{seed}"
    out.mkdir(parents=True)
    (out / "summary.json").write_text(json.dumps(trial_summary(method, seed), indent=2))
    with (out / "metrics.jsonl").open("w") as handle:
        for record in metrics_records(method, seed):
            handle.write(json.dumps(record) + "\n")
    return out.name


def manifest_entry(method: str, seed: int, state: str = "TERMINATED", **axes: Any) -> dict[str, Any]:
    return {
        "trial_id": f"{method}-seed{seed}",
        "method": method,
        "seed": seed,
        "axes": {"method": method, "seed": seed, **axes},
        "state": state,
        "out_dir": f"{method}-seed{seed}",
        "started_at": "2025-01-01T00:00:00Z",
        "ended_at": "2025-01-01T00:01:00Z",
        "error": None,
        "config": {"method": {"name": method}, "seed": seed, "scheduler": {"pressure_threshold": 0.5}},
    }


def build_sweep(
    root: Path,
    sweep_id: str = "toy-20250101",
    skip: Sequence[tuple[str, int]] = (),
    seeds: Sequence[int] = SEEDS,
    methods: Sequence[str] = METHODS,
) -> Path:
    """Write the sweep directory; trials in ``skip`` are absent from the manifest and the disk."""
    sweep_dir = root / sweep_id
    sweep_dir.mkdir(parents=True)
    trials = []
    for seed in seeds:
        for method in methods:
            if (method, seed) in skip:
                continue
            write_trial(sweep_dir, method, seed)
            trials.append(manifest_entry(method, seed))
    manifest = {
        "sweep_id": sweep_id,
        "name": "toy_methods",
        "created_at": "2025-01-01T00:00:00Z",
        "status": "FINISHED",
        "address": "local",
        "trials": trials,
    }
    (sweep_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (sweep_dir / "sweep.yaml").write_text("name: toy_methods\n")
    return sweep_dir


def edit_manifest(sweep_dir: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = sweep_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest, indent=2))
