"""`sweep fetch`'s two halves without a cluster: the head's archive stream and the client's unpacking.

The round trip through a real head is in test_remote.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from biollm_platform.sweep import fetch_job
from biollm_platform.sweep.fetch import remote_results_hint
from biollm_platform.sweep.manifest import Manifest, TrialRecord, write_manifest
from biollm_platform.sweep.remote import error_line


def _sweep(root: Path) -> Path:
    trial = root / "sleep-seed7"
    (trial / "checkpoints" / "step-00000010").mkdir(parents=True)
    (trial / "checkpoints" / "step-00000010" / "state.pt").write_bytes(b"weights")
    (trial / "summary.json").write_text("{}")
    (root / "_ray" / "tune-x" / "checkpoint_000001").mkdir(parents=True)  # an older sweep's copy
    (root / "_ray" / "tune-x" / "experiment_state.json").write_text("{}")
    record = TrialRecord(trial_id="sleep-seed7", mode="sleep", seed=7, axes={}, out_dir="sleep-seed7")
    write_manifest(root, Manifest(sweep_id="s", name="s", trials=[record]))
    return root


def _archive(out: str) -> tuple[list[str], bool]:
    data = b"".join(base64.b64decode(line[len(fetch_job.PREFIX) :]) for line in out.splitlines() if line.startswith(fetch_job.PREFIX))
    (end,) = [line for line in out.splitlines() if line.startswith(fetch_job.END)]
    size, digest = end[len(fetch_job.END) :].split()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = sorted(member.name for member in tar.getmembers())
    return names, (int(size), digest) == (len(data), hashlib.sha256(data).hexdigest())


def test_archive_leaves_checkpoints_on_the_head_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _sweep(tmp_path / "sweep")
    assert fetch_job.main([str(root)]) == 0
    names, intact = _archive(capsys.readouterr().out)
    assert intact and "./sleep-seed7/summary.json" in names and "./manifest.json" in names
    assert not [n for n in names if "checkpoint" in n] and "./.manifest.lock" not in names
    assert fetch_job.main([str(root), "--checkpoints"]) == 0
    names, intact = _archive(capsys.readouterr().out)
    assert intact and "./sleep-seed7/checkpoints/step-00000010/state.pt" in names


def test_archive_of_no_sweep_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fetch_job.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: no sweep directory there (no manifest.json)"


def test_remote_record_says_where_its_results_are(tmp_path: Path) -> None:
    record = TrialRecord(trial_id="sleep-seed7", mode="sleep", seed=7, axes={}, out_dir="sleep-seed7")
    manifest = Manifest(
        sweep_id="s", name="s", job_id="biollm-s", address="http://h:8265", remote_dir="/home/u/biollm/outputs/sweeps/s", trials=[record]
    )
    write_manifest(tmp_path, manifest)
    hint = remote_results_hint(tmp_path)
    assert hint and "in /home/u/biollm/outputs/sweeps/s, not here" in hint and "`biollm sweep fetch s`" in hint
    (tmp_path / "sleep-seed7").mkdir()
    (tmp_path / "sleep-seed7" / "summary.json").write_text("{}")
    assert remote_results_hint(tmp_path) is None  # fetched: nothing to say


def test_error_line_of_a_failed_job() -> None:
    logs = "BIOLLM_MANIFEST {}\nsome output\nerror: storage /x: /x is a file\n"
    assert error_line(logs, "Job entrypoint command failed with exit code 2") == "error: storage /x: /x is a file"
    traceback = "Traceback (most recent call last):\n  File ...\nValueError: bad thing\n"
    assert error_line(traceback, None) == "ValueError: bad thing"
    assert error_line("", "Job entrypoint command failed with exit code 1, last logs:\n...") == (
        "Job entrypoint command failed with exit code 1, last logs:"
    )
