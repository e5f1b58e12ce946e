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
