"""`biollm sweep` on bad input: one clear line on stderr, exit code 2, no sweep directory left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biollm_platform.cli.sweep import main

GOOD = "name: t\nbase:\n  overrides: [train=cpu, device=cpu]\ngrid:\n  seed: [7]\n  mode: [sleep, nosleep]\n"


def _run(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["biollm sweep", *args])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\ngrid:\n\tseed: [7]\n", "bad.yaml:3:1: invalid YAML"),
        (
            GOOD + "  experts.num_expertz: [4, 8]\n",
            "bad.yaml:7: grid.experts.num_expertz: `experts.num_expertz` is not a config key",
        ),
        ("name: t\ngrid: {}\n", "bad.yaml:2: grid: Value error, the grid is empty"),
        ("name: t\ngrid:\n  seed: []\n", "axis `seed` has no values"),
        (GOOD + "resources:\n  gpu_per_worker: 1\n", "bad.yaml:8: resources.gpu_per_worker: unknown key"),
        (GOOD + "  experts.num_experts: [0]\n", "bad.yaml:7: trial"),
    ],
    ids=["malformed", "unknown-axis", "empty-grid", "empty-axis", "unknown-key", "bad-axis-value"],
)
def test_bad_sweep_file(text: str, expected: str, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    sweep_file = tmp_path / "bad.yaml"
    sweep_file.write_text(text + f"storage: {tmp_path / 'sweeps'}\n" if "storage" not in text else text)
    code, _, err = _run(["submit", str(sweep_file)], capsys, monkeypatch)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert expected in err
    assert not (tmp_path / "sweeps").exists()


def test_unreachable_address(tmp_path: Path, repo_root: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(
        ["submit", str(repo_root / "sweeps" / "toy_smoke.yaml"), "--address", "http://127.0.0.1:9"],
        capsys,
        monkeypatch,
    )
    assert code == 2
    assert (
        err.strip().splitlines() == [err.strip()]
        and "cannot reach the Ray cluster at http://127.0.0.1:9" in err
    )
    assert not (tmp_path / "outputs").exists()


def test_missing_file_and_unknown_sweep(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    code, _, err = _run(["submit", str(tmp_path / "nope.yaml")], capsys, monkeypatch)
    assert (code, err.strip()) == (2, f"error: {tmp_path / 'nope.yaml'}: sweep file not found")
    code, _, err = _run(["status", "nope", "--root", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and "no sweep 'nope'" in err


def test_dry_run_prints_every_resolved_trial(repo_root: Path, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(
        [
            "submit",
            str(repo_root / "sweeps" / "toy_ablation.yaml"),
            "--dry-run",
            "--only",
            "nosleep",
            "--max-steps",
            "50",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert "5 trials: nosleep-seed7, nosleep-seed42, nosleep-seed123, nosleep-seed1, nosleep-seed2" in out
    assert out.count("max_steps: 50") == 5 and "name: cls" not in out
    assert not (tmp_path / "outputs").exists()


def test_schema_is_json_schema(capsys, monkeypatch) -> None:  # noqa: ANN001
    code, out, _ = _run(["schema"], capsys, monkeypatch)
    schema = json.loads(out)
    assert code == 0 and schema["additionalProperties"] is False and "grid" in schema["required"]


def test_executor_flag_overrides_the_file(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    code, out, _ = _run(["submit", str(good), "--dry-run"], capsys, monkeypatch)
    assert code == 0 and "executor: train_workers" in out  # the schema's default
    code, out, _ = _run(["submit", str(good), "--dry-run", "--executor", "train_local"], capsys, monkeypatch)
    assert code == 0 and "executor: train_local" in out
    code, _, err = _run(["submit", str(good), "--dry-run", "--executor", "local"], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1
    assert "Invalid value for '--executor': 'local' is not one of 'train_workers', 'train_local'." in err
    two = tmp_path / "two.yaml"
    two.write_text(GOOD + "resources:\n  workers_per_trial: 2\n")
    code, _, err = _run(["submit", str(two), "--dry-run", "--executor", "train_local"], capsys, monkeypatch)
    assert code == 2 and "--executor train_local: executor train_local runs one worker per trial" in err
    assert not (tmp_path / "outputs").exists()


def test_executor_choices_are_the_schema_s() -> None:
    from typing import get_args

    from biollm_platform.cli.sweep import Executor
    from biollm_platform.sweep.schema import Resources

    assert get_args(Executor) == get_args(Resources.model_fields["executor"].annotation)


def test_dry_run_json_is_one_object(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    code, out, _ = _run(["submit", str(good), "--dry-run", "--json"], capsys, monkeypatch)
    document = json.loads(out)
    assert code == 0 and [t["trial_id"] for t in document["trials"]] == ["cls-seed7", "nosleep-seed7"]
    assert document["trials"][0]["config"]["method"] == {"name": "cls"} and not (tmp_path / "outputs").exists()


def _sweep_record(root: Path, sweep_id: str, **fields: object) -> Path:
    from biollm_platform.sweep.manifest import Manifest, TrialRecord, write_manifest

    trial = TrialRecord(trial_id="sleep-seed7", mode="sleep", seed=7, axes={"seed": 7, "mode": "sleep"}, out_dir="sleep-seed7")
    directory = root / sweep_id
    directory.mkdir(parents=True)
    write_manifest(directory, Manifest(sweep_id=sweep_id, name="t", trials=[trial], **fields))
    (directory / "sweep.yaml").write_text(GOOD)
    return directory


def test_corrupt_manifest_is_one_line_and_list_goes_on(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    _sweep_record(tmp_path, "good-1", status="FINISHED")
    bad = _sweep_record(tmp_path, "bad-1")
    (bad / "manifest.json").write_text('{"sweep_id": "bad-1", "trials": [')  # a write cut short
    before = sorted(p.name for p in bad.iterdir())
    for command in (["status", "bad-1"], ["resume", "bad-1"]):
        code, _, err = _run([*command, "--root", str(tmp_path)], capsys, monkeypatch)
        assert code == 2 and err.startswith(f"error: {bad / 'manifest.json'}: corrupt manifest: not valid JSON")
        assert len(err.strip().splitlines()) == 1
    code, out, err = _run(["list", "--root", str(tmp_path)], capsys, monkeypatch)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0].startswith("bad-1  CORRUPT") and "corrupt manifest" in lines[0]
    assert lines[1].startswith("good-1  FINISHED")
    assert sorted(p.name for p in bad.iterdir()) == before  # nothing written to the bad one


def test_storage_that_is_a_file_fails_before_ray(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    sweep_file = tmp_path / "good.yaml"
    sweep_file.write_text(GOOD)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    import sys

    already = "ray" in sys.modules
    code, _, err = _run(["submit", str(sweep_file), "--storage", str(a_file / "sub")], capsys, monkeypatch)
    assert code == 2 and err.strip() == (
        f"error: storage {a_file / 'sub'}: {a_file} is a file, not a directory (--storage or the file's `storage`)"
    )
    assert already or "ray" not in sys.modules  # refused before Ray was even imported
    assert not (tmp_path / "outputs").exists()


def test_dead_driver_shows_interrupted_with_the_resume_command(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    _sweep_record(tmp_path, "dead-1", status="RUNNING", driver_pid=gone.pid, driver_host=socket.gethostname())
    code, out, _ = _run(["status", "dead-1", "--root", str(tmp_path), "--json"], capsys, monkeypatch)
    data = json.loads(out)
    assert code == 0 and data["status"] == "INTERRUPTED"
    assert data["note"] == f"its driver (pid {gone.pid}) is no longer running; `biollm sweep resume dead-1` continues it"
    code, out, _ = _run(["list", "--root", str(tmp_path)], capsys, monkeypatch)
    assert "dead-1  INTERRUPTED" in out and "biollm sweep resume dead-1" in out
