"""manifest.json: atomic writes, round trips, state updates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_core.errors import UserError
from biollm_platform.sweep.manifest import Manifest, TrialRecord, read_manifest, update_trial, write_manifest


def _manifest() -> Manifest:
    trials = [
        TrialRecord(trial_id=f"{m}-seed7", method=m, seed=7, axes={"seed": 7, "method": m}, out_dir=f"{m}-seed7")
        for m in ("cls", "nosleep")
    ]
    return Manifest(sweep_id="s-1", name="s", trials=trials)


def test_round_trip_and_update(tmp_path: Path) -> None:
    manifest = _manifest()
    write_manifest(tmp_path, manifest)
    update_trial(tmp_path, manifest, "cls-seed7", state="TERMINATED", step=20)
    again = read_manifest(tmp_path)
    assert again.trial("cls-seed7").state == "TERMINATED" and again.trial("cls-seed7").step == 20
    assert again.counts() == {"PENDING": 1, "RUNNING": 0, "TERMINATED": 1, "ERROR": 0}
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert {"sweep_id", "name", "created_at", "status", "address", "trials"} <= set(data)
    assert {
        "trial_id",
        "method",
        "seed",
        "axes",
        "state",
        "out_dir",
        "started_at",
        "ended_at",
        "error",
        "config",
    } <= set(data["trials"][0])
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp files left


def test_failed_write_keeps_the_old_manifest(tmp_path: Path) -> None:
    manifest = _manifest()
    write_manifest(tmp_path, manifest)
    manifest.trials[0].axes = {"bad": object()}  # json can't encode it... default=str can; use a cycle instead
    cyclic: dict = {}
    cyclic["self"] = cyclic
    manifest.trials[0].axes = cyclic
    with pytest.raises(ValueError):
        write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path).trials[0].axes == {"seed": 7, "method": "cls"}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_not_a_sweep_dir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a sweep directory"):
        read_manifest(tmp_path)


def test_a_manifest_written_before_methods_reads_its_modes_as_methods(tmp_path: Path) -> None:
    legacy = {"sweep_id": "s", "name": "s", "trials": [
        {"trial_id": "sleep-seed7", "mode": "sleep", "seed": 7, "axes": {"seed": 7, "mode": "sleep"}, "out_dir": "sleep-seed7"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(legacy))
    (trial,) = read_manifest(tmp_path).trials
    assert (trial.method, trial.axes) == ("cls", {"seed": 7, "method": "cls"})
