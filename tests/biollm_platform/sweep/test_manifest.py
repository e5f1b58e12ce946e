"""manifest.json: atomic locked writes, round trips, state updates, a sticky stop, corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_core.errors import UserError
from biollm_platform.sweep.manifest import (
    Manifest,
    TrialRecord,
    clear_stop,
    read_manifest,
    request_stop,
    update_trial,
    write_manifest,
)


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
    assert sorted(p.name for p in tmp_path.iterdir()) == [".manifest.lock", "manifest.json"]  # no temp files left


def test_failed_write_keeps_the_old_manifest(tmp_path: Path) -> None:
    manifest = _manifest()
    write_manifest(tmp_path, manifest)
    manifest.trials[0].config = {"big": 10**4300}  # Python refuses to write an int this long: json.dump raises
    with pytest.raises(ValueError):
        write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path).trials[0].axes == {"seed": 7, "method": "cls"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".manifest.lock", "manifest.json"]


def test_a_stop_is_kept_when_the_driver_writes_afterwards(tmp_path: Path) -> None:
    """`sweep stop` writes STOPPED; the driver's later writes (its trial updates, its final INTERRUPTED)
    keep it, until `sweep resume` clears the request."""
    driver_copy = _manifest()
    driver_copy.status = "RUNNING"
    write_manifest(tmp_path, driver_copy)
    assert request_stop(tmp_path).status == "STOPPED"
    update_trial(tmp_path, driver_copy, "cls-seed7", state="PENDING")  # the driver's stale copy
    driver_copy.status = "INTERRUPTED"
    write_manifest(tmp_path, driver_copy)
    on_disk = read_manifest(tmp_path)
    assert on_disk.status == "STOPPED" and on_disk.stop_requested_at and driver_copy.status == "STOPPED"
    clear_stop(tmp_path, on_disk)
    on_disk.status = "RUNNING"
    write_manifest(tmp_path, on_disk)
    assert read_manifest(tmp_path).status == "RUNNING"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"sweep_id": "s", "trials": [', "corrupt manifest: not valid JSON"),
        (b'{"sweep_id": 3}', "corrupt manifest: sweep_id: Input should be a valid string"),
        (b"\xff\xfe\x00\x01binary", "corrupt manifest (not UTF-8 text at byte 0)"),
    ],
    ids=["truncated", "wrong-type", "binary"],
)
def test_corrupt_manifest_is_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(UserError) as raised:
        read_manifest(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'manifest.json'}: ") and expected in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1


def test_not_a_sweep_dir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a sweep directory"):
        read_manifest(tmp_path)


def test_a_manifest_written_before_methods_reads_its_modes_as_methods(tmp_path: Path) -> None:
    legacy = {"sweep_id": "s", "name": "s", "trials": [
        {"trial_id": "sleep-seed7", "mode": "sleep", "seed": 7, "axes": {"seed": 7, "mode": "sleep"}, "out_dir": "sleep-seed7"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(legacy))
    (trial,) = read_manifest(tmp_path).trials
    assert (trial.method, trial.axes) == ("cls", {"seed": 7, "method": "cls"})
