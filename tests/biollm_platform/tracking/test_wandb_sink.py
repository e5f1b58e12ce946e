"""WandbSink against real offline W&B runs, read back with W&B's own reader (`wandb leet inspect`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from biollm_core.config.schema import LoggingConfig
from biollm_platform.tracking.offline_reader import find_wandb_files, read_offline_run
from biollm_platform.tracking.wandb_sink import STAGING_DIR, WandbSink, wandb_sink_from_config

FAKE_KEY = "0123456789abcdef" * 2 + "fedcba98"  # 40 characters, like a W&B API key


pytestmark = pytest.mark.usefixtures("wandb_env")  # tests/biollm_platform/conftest.py


def _trial_files(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    validated = {"seed": 7, "method": {"name": "cls"}, "hf_token": "hf_abc12345"}
    (out_dir / "validated_config.json").write_text(json.dumps(validated))
    (out_dir / "run_metadata.json").write_text(json.dumps({"host": "lab", "python": "3.11"}))


def _checkpoint(out_dir: Path, step: int) -> Path:
    path = out_dir / "checkpoints" / f"step-{step:08d}"
    path.mkdir(parents=True)
    (path / "state.pt").write_bytes(bytes(range(256)) * 4)
    (path / "meta.json").write_text(json.dumps({"step": step}))
    return path


def _run_trial(out_dir: Path, **overrides) -> WandbSink:
    _trial_files(out_dir)
    kwargs = dict(project="biollm-test", run_name="cls-seed7", group="sweep-abc", tags=["toy"],
                  config={"seed": 7, "method": {"name": "cls"}, "experts": {"num_experts": 4}, "sweep_id": "sweep-abc"},
                  out_dir=out_dir, mode="offline")
    sink = WandbSink(**{**kwargs, **overrides})
    for step in range(4):
        sink.log_metrics(step, {"task_loss": 1.0 / (step + 1), "sleep_pressure": 0.1 * step})
    first = _checkpoint(out_dir, 2)
    sink.log_checkpoint(2, first, final=False)
    sink.log_metrics(4, {"task_loss": 0.2, "seen_acc": 0.75})
    last = _checkpoint(out_dir, 4)
    sink.log_checkpoint(4, last, final=True)
    sink.log_summary({"final_seen_acc_avg": 0.75, "steps": 5, "method": {"name": "cls"},
                      "accuracy_matrix": [[1.0, 0.0], [0.5, 1.0]]})
    sink.close()
    return sink


def test_offline_run_reads_back_with_metrics_summary_and_artifacts(tmp_path: Path):
    out_dir = tmp_path / "sweep" / "cls-seed7"
    sink = _run_trial(out_dir)
    files = find_wandb_files(tmp_path / "sweep")
    assert len(files) == 1 and files[0].parent == sink.run_dir
    assert files[0].is_relative_to(out_dir / "wandb")  # inside the trial's own folder

    run = read_offline_run(sink.run_dir)
    assert (run.name, run.group, run.job_type) == ("cls-seed7", "sweep-abc", "train")
    assert run.project == "biollm-test"
    assert run.state == "finished" and run.exit_code == 0 and run.tags == ["toy"]
    assert run.config["seed"] == 7 and run.config["method"] == {"name": "cls"}
    assert run.config["experts"] == {"num_experts": 4}
    assert run.metric_by_step("task_loss") == {0: 1.0, 1: 0.5, 2: 1 / 3, 3: 0.25, 4: 0.2}
    assert run.metric_by_step("seen_acc") == {4: 0.75}
    assert run.summary["final_seen_acc_avg"] == 0.75 and run.summary["steps"] == 5
    assert run.summary["accuracy_matrix"] == [[1.0, 0.0], [0.5, 1.0]]

    models = [a for a in run.artifacts if a.type == "model"]
    assert [a.name for a in models] == [f"model-{run.run_id}"] * 2
    assert set(models[0].aliases) == {"latest", "step-2"}
    assert set(models[1].aliases) == {"latest", "step-4", "final"}
    assert sorted(models[1].files) == ["meta.json", "state.pt"]
    staging = out_dir / "wandb" / STAGING_DIR
    assert all(Path(p).is_relative_to(staging) and Path(p).is_file() for a in models for p in a.local_paths)
    config_artifact = run.artifact(f"config-{run.run_id}")
    assert config_artifact.type == "config" and config_artifact.files == ["validated_config.json"]
    assert run.artifact(f"metadata-{run.run_id}").files == ["run_metadata.json"]
    staged_config = json.loads(Path(config_artifact.local_paths[0]).read_text())
    assert staged_config["hf_token"] == "<redacted>" and staged_config["seed"] == 7

    shutil.rmtree(out_dir / "checkpoints")  # what checkpoint_keep_last does to old checkpoints
    assert all(Path(p).read_bytes() for a in run.artifacts for p in a.local_paths)  # `wandb sync` still can


def test_wandb_sync_finds_every_trial_of_a_sweep(tmp_path: Path):
    sweep = tmp_path / "sweep"
    _run_trial(sweep / "cls-seed7")
    _run_trial(sweep / "nosleep-seed7", run_name="nosleep-seed7")
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "sync", "--dry-run", *map(str, sorted(sweep.glob("*/wandb")))],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Would sync 2 run(s)" in done.stdout + done.stderr


def test_closed_without_summary_is_marked_failed(tmp_path: Path):
    _trial_files(tmp_path)
    sink = WandbSink(project="p", run_name="cls-seed1", out_dir=tmp_path, mode="offline")
    sink.log_metrics(0, {"task_loss": 2.0})
    sink.close()
    sink.close()  # idempotent
    run = read_offline_run(sink.run_dir)
    assert run.exit_code == 1
    assert {a.type for a in run.artifacts} == {"config", "metadata"}  # still kept for a post-mortem


def test_disabled_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    out_dir = tmp_path / "trial"
    out_dir.mkdir()
    sink = WandbSink(project="p", run_name="cls-seed7", out_dir=out_dir, mode="online")
    sink.log_metrics(0, {"task_loss": 1.0})
    sink.log_checkpoint(0, _checkpoint(out_dir, 0), final=True)
    sink.log_summary({"steps": 1})
    sink.close()
    assert sink.run is None and sink.run_dir is None
    assert not (out_dir / "wandb").exists()


def test_online_without_key_falls_back_to_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog):
    monkeypatch.setenv("WANDB_MODE", "online")
    with caplog.at_level("WARNING"):
        sink = WandbSink(project="p", run_name="cls-seed7", out_dir=tmp_path, mode="offline")
    sink.close()
    assert sink.resolution.mode == "offline" and sink.resolution.requested == "online"
    assert "no API key is set" in caplog.text
    assert sink.run_dir.name.startswith("offline-run-")


def test_resume_reuses_the_run_id(tmp_path: Path):
    first = WandbSink(project="p", run_name="cls-seed7", out_dir=tmp_path, mode="offline", resume="allow")
    first.log_metrics(0, {"task_loss": 1.0})
    first.close()
    second = WandbSink(project="p", run_name="cls-seed7", out_dir=tmp_path, mode="offline", resume="allow")
    second.log_metrics(1, {"task_loss": 0.5})
    second.close()
    assert first.run.id == second.run.id
    assert len(find_wandb_files(tmp_path)) == 2  # `wandb sync` replays both, in order, into one run


def test_api_key_appears_in_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)  # offline mode: the key is set, but never used
    out_dir = tmp_path / "trial"
    leaky_config = {"seed": 7, "method": {"name": "cls"}, "note": f"key={FAKE_KEY}", "wandb_api_key": FAKE_KEY}
    _run_trial(out_dir, config=leaky_config)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(written) > 10
    leaking = [path for path in written if FAKE_KEY.encode() in path.read_bytes()]
    assert leaking == []
    run = read_offline_run(find_wandb_files(out_dir)[0])
    assert run.config["wandb_api_key"] == "<redacted>" and run.config["note"] == "key=<redacted>"


def test_builder_maps_logging_config(tmp_path: Path):
    assert wandb_sink_from_config(LoggingConfig(use_wandb=False), out_dir=tmp_path, run_config={}) is None
    on = LoggingConfig(use_wandb=True, wandb_tags=["a"], wandb_group="mine")
    assert wandb_sink_from_config(on, out_dir=tmp_path, run_config={}, rank=1) is None
    sink = wandb_sink_from_config(on, out_dir=tmp_path, run_config={"seed": 3, "method": {"name": "nosleep"}},
                                  extra_config={"sweep_id": "s1"})
    sink.close()
    run = read_offline_run(sink.run_dir)
    assert (run.name, run.group, run.tags, run.project) == ("nosleep-seed3", "mine", ["a"], "biollm-cls")
    assert run.config["sweep_id"] == "s1"
    retried = wandb_sink_from_config(on, out_dir=tmp_path, run_config={"seed": 3, "method": {"name": "nosleep"}},
                                     run_name="nosleep-seed3", group="sweep-1")
    retried.close()
    assert retried.run.id == sink.run.id and retried.run.group == "sweep-1"  # the sweep's group wins


def test_environment_wins_over_unset_config_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """WANDB_PROJECT, WANDB_DIR and WANDB_RESUME decide when the config leaves the key unset (real runs)."""
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "env-dir"))
    monkeypatch.setenv("WANDB_RESUME", "never")
    unset = wandb_sink_from_config(LoggingConfig(use_wandb=True), out_dir=tmp_path / "a", run_config={"seed": 1})
    unset.close()
    assert unset.run_dir.is_relative_to(tmp_path / "env-dir" / "wandb")  # not <out_dir>/wandb
    assert read_offline_run(unset.run_dir).project == "from-env"
    assert not (tmp_path / "a" / "wandb" / "biollm-run-id").exists()  # resume never: no id kept for a retry

    chosen = LoggingConfig(use_wandb=True, wandb_project="from-config", wandb_dir=str(tmp_path / "cfg-dir"),
                           wandb_resume="allow")
    kept = wandb_sink_from_config(chosen, out_dir=tmp_path / "b", run_config={"seed": 1})
    kept.close()
    assert kept.run_dir.is_relative_to(tmp_path / "cfg-dir" / "wandb")
    assert read_offline_run(kept.run_dir).project == "from-config"
    assert (tmp_path / "b" / "wandb" / "biollm-run-id").is_file()


def test_checkpoint_artifacts_say_their_size(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level("INFO", logger="biollm_platform.tracking.wandb_sink"):
        sink = _run_trial(tmp_path / "trial")
    per_checkpoint = 256 * 4 + len(json.dumps({"step": 2}))  # state.pt + meta.json of _checkpoint
    assert sink.checkpoint_bytes == 2 * per_checkpoint
    lines = [r.getMessage() for r in caplog.records if "logged as artifact" in r.getMessage()]
    assert len(lines) == 2 and "(0.0 MiB; 0.0 MiB so far)" in lines[0] and "log_checkpoints: false" in lines[0]


def test_checkpoints_stay_off_w_and_b_when_asked(tmp_path: Path):
    sink = _run_trial(tmp_path / "trial", log_checkpoints=False)
    run = read_offline_run(sink.run_dir)
    assert not [a for a in run.artifacts if a.type == "model"] and sink.checkpoint_bytes == 0
    assert {a.type for a in run.artifacts} == {"config", "metadata"}
