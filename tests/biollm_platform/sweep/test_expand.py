"""Grid expansion: the product of the axes, each trial's config resolved by the engine's loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from biollm_core.errors import UserError
from biollm_platform.sweep.expand import check_config_key, expand, format_value
from biollm_platform.sweep.schema import load_sweep, parse_sweep


def test_toy_ablation_is_five_seeds_by_two_methods(repo_root: Path) -> None:
    path = repo_root / "sweeps" / "toy_ablation.yaml"
    trials = expand(load_sweep(path), path, "sid")
    assert [t.trial_id for t in trials] == [f"{m}-seed{s}" for s in (7, 42, 123, 1, 2) for m in ("cls", "nosleep")]
    for trial in trials:
        assert (trial.config["seed"], trial.config["method"]["name"]) == (trial.seed, trial.method)
        assert trial.axes == {"seed": trial.seed, "method": trial.method}
        assert trial.config["device"] == "cpu" and trial.out_dir == trial.trial_id


def test_the_seed_mode_axis_names_methods_and_method_keys_are_axes(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ngrid:\n  seed: [1]\n  mode: [sleep, nosleep]\n")
    assert [(t.trial_id, t.axes) for t in expand(load_sweep(path), path, "sid")] == [
        ("cls-seed1", {"seed": 1, "method": "cls"}), ("nosleep-seed1", {"seed": 1, "method": "nosleep"})]
    path.write_text("name: s\ngrid:\n  seed: [1]\n  method: [ewc]\n  method.lambda: [10, 1000]\n")
    trials = expand(load_sweep(path), path, "sid")
    assert [t.config["method"]["lambda"] for t in trials] == [10.0, 1000.0]
    assert trials[1].trial_id == "ewc-seed1-method.lambda=1000"
    path.write_text("name: s\ngrid:\n  seed: [1]\n  method: [cls, {name: ewc, lambda: 1.0e+9}]\n")
    assert [(t.trial_id, t.axes, t.config["method"].get("lambda")) for t in expand(load_sweep(path), path, "sid")] == [
        ("cls-seed1", {"seed": 1, "method": "cls"}, None), ("ewc-seed1", {"seed": 1, "method": "ewc"}, 1e9)]
    path.write_text("name: s\ngrid:\n  seed: [1]\n  method: [cls, ewc]\n  method.lambda: [10]\n")
    refused = r"s.yaml:\d+: trial \{'seed': 1, 'method': 'cls', 'method.lambda': 10\}: unknown key 'method.lambda'"
    with pytest.raises(UserError, match=refused):
        expand(load_sweep(path), path, "sid")


def test_extra_axis_and_cli_overrides(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nbase:\n  overrides: [train=cpu]\ngrid:\n  method: [cls]\n  seed: [1, 2]\n"
        "  experts.num_experts: [4, 8]\n  ewc.lambda: [0.0]\n"
    )
    trials = expand(load_sweep(path), path, "sid", ("train.max_steps=30",))
    assert [t.trial_id for t in trials] == [
        "cls-seed1-experts.num_experts=4-ewc.lambda=0.0",
        "cls-seed1-experts.num_experts=8-ewc.lambda=0.0",
        "cls-seed2-experts.num_experts=4-ewc.lambda=0.0",
        "cls-seed2-experts.num_experts=8-ewc.lambda=0.0",
    ]
    assert [t.config["experts"]["num_experts"] for t in trials] == [4, 8, 4, 8]
    assert all(t.config["train"]["max_steps"] == 30 and t.config["ewc"]["lambda"] == 0.0 for t in trials)
    assert trials[0].config["logging"]["run_name"] == trials[0].trial_id


def test_override_of_an_axis_is_refused(repo_root: Path) -> None:
    path = repo_root / "sweeps" / "toy_smoke.yaml"
    with pytest.raises(UserError, match="sets `seed`, which is a grid axis"):
        expand(load_sweep(path), path, "sid", ("seed=3",))


def test_wandb_settings_become_overrides(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ngrid:\n  seed: [1]\nwandb:\n  enabled: true\n  project: p\n  tags: [a]\n")
    (trial,) = expand(load_sweep(path), path, "sweep-1")
    logging = trial.config["logging"]
    assert logging["use_wandb"] and logging["wandb_project"] == "p" and logging["wandb_group"] == "sweep-1"
    assert logging["wandb_tags"] == ["a", "s"]
    assert logging["wandb_log_checkpoints"] is True


def test_unset_wandb_keys_stay_unset_and_checkpoints_can_stay_off(tmp_path: Path) -> None:
    """Unset project/mode leave the trial's config (and then WANDB_PROJECT, WANDB_MODE) in charge."""
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ngrid:\n  seed: [1]\nwandb: {enabled: true, log_checkpoints: false}\n")
    (trial,) = expand(load_sweep(path), path, "sweep-1")
    logging = trial.config["logging"]
    assert (logging["wandb_project"], logging["wandb_mode"], logging["wandb_log_checkpoints"]) == (None, "offline", False)


def test_config_keys() -> None:
    check_config_key("experts.num_experts")
    check_config_key("ewc.lambda")  # by alias
    check_config_key("train")  # a config group
    check_config_key("method")
    check_config_key("mode")  # the seed's spelling of method
    check_config_key("method.alpha")  # a key of a method's section (lwf, derpp)
    with pytest.raises(ValueError, match="experts has no `num`"):
        check_config_key("experts.num")
    with pytest.raises(ValueError, match="`seed` is a value"):
        check_config_key("seed.x")
    with pytest.raises(ValueError, match="method has no `alpah`"):
        check_config_key("method.alpah")


def test_format_value() -> None:
    assert [format_value(v) for v in ("cpu", True, None, 0.5, [1, "a"])] == [
        "cpu",
        "true",
        "null",
        "0.5",
        '[1,"a"]',
    ]


def test_bad_axis_value_names_the_trial(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ngrid:\n  seed: [1]\n  experts.top_k: [99]\n")
    with pytest.raises(UserError, match=r"s.yaml:4: trial \{'seed': 1, 'experts.top_k': 99\}"):
        expand(parse_sweep(path.read_text(), str(path)), path, "sid")


def test_existing_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ray Train workers run in a working directory of their own: a relative path must not reach them
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.jsonl").write_text("")
    (tmp_path / "lm").mkdir()
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nbase:\n  overrides: [model=hf_causal_lm, benchmark=instruction, model.hf_model_name=lm,"
        " benchmark.local_path=data/x.jsonl, benchmark.tokenizer_name=gpt2]\ngrid:\n  seed: [1]\n"
    )
    (trial,) = expand(load_sweep(path), path, "sid")
    assert trial.config["model"]["hf_model_name"] == str((tmp_path / "lm").resolve())
    assert trial.config["benchmark"]["local_path"] == str((tmp_path / "data" / "x.jsonl").resolve())
    assert trial.config["benchmark"]["tokenizer_name"] == "gpt2"  # a hub id: no such path here
    assert f"model.hf_model_name={(tmp_path / 'lm').resolve()}" in trial.overrides

    npz = tmp_path / "s_npz.yaml"  # a user's own classification data travels the same way
    (tmp_path / "data" / "digits.npz").write_bytes(b"")
    npz.write_text("name: s\nbase:\n  overrides: [model=mlp, benchmark=split_classification, benchmark.source=npz,"
                   " benchmark.path=data/digits.npz]\ngrid:\n  seed: [1]\n")
    (trial,) = expand(load_sweep(npz), npz, "sid")
    assert trial.config["benchmark"]["path"] == str((tmp_path / "data" / "digits.npz").resolve())

def test_a_bad_value_of_a_later_axis_names_that_axis_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ngrid:\n  seed: [1]\n  mode: [sleep]\n  experts.num_experts: [4, 0]\n  replay.capacity: [8]\n")
    with pytest.raises(UserError, match=r"s.yaml:5: trial .*experts.num_experts: input should be greater than or equal to 1"):
        expand(parse_sweep(path.read_text(), str(path)), path, "sid")


def test_a_batch_that_does_not_split_over_the_workers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbase:\n  overrides: [train.batch_size=6]\ngrid:\n  seed: [1]\nresources:\n  workers_per_trial: 4\n")
    refused = r"train.batch_size=6 does not split into 4 equal data-parallel shards \(resources.workers_per_trial=4\)"
    with pytest.raises(UserError, match=refused):
        expand(load_sweep(path), path, "sid")
    path.write_text(path.read_text().replace("workers_per_trial: 4", "workers_per_trial: 2"))
    assert len(expand(load_sweep(path), path, "sid")) == 1
