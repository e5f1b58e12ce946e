"""The sweep file schema: shipped files validate, mistakes name their file:line and key path."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from biollm_core.config.yaml_source import load_yaml_document
from biollm_core.errors import UserError
from biollm_platform.sweep.expand import expand
from biollm_platform.sweep.schema import SweepSpec, load_sweep, parse_sweep

SHIPPED = sorted(path.name for path in (Path(__file__).resolve().parents[3] / "sweeps").glob("*.yaml"))


def test_the_shipped_sweeps_are_all_here() -> None:
    assert {"toy_ablation.yaml", "toy_smoke.yaml", "toy_ablation_gpu.yaml", "instruction_ablation.yaml",
            "toy_methods.yaml", "instruction_methods.yaml", "toy_ewc_lambda.yaml", "split_mnist.yaml",
            "split_mnist_200.yaml", "split_mnist_ewc_lambda.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_sweeps_validate(repo_root: Path, name: str) -> None:
    path = repo_root / "sweeps" / name
    spec = load_sweep(path)
    trials = expand(spec, path, "sid")  # every trial's run config validates too
    compare = spec.compare
    arms = {t.axes[compare.axis] for t in trials}
    assert compare.axis in spec.grid and compare.control in arms and len(arms) >= 2
    assert compare.treatment is None or compare.treatment in arms
    assert len(spec.grid["seed"]) >= 3 and compare.pair_by == "seed"
    assert len(trials) == len({t.trial_id for t in trials})


def test_the_comparison_sweeps_have_five_seeds_and_every_method(repo_root: Path) -> None:
    from biollm_core.methods import METHOD_NAMES

    for name in ("toy_methods.yaml", "instruction_methods.yaml", "split_mnist.yaml"):
        spec = load_sweep(repo_root / "sweeps" / name)
        assert len(spec.grid["seed"]) >= 5, name  # the brief: at least 5 seeds for a claim
        names = {value["name"] if isinstance(value, dict) else value for value in spec.grid["method"]}
        assert names == set(METHOD_NAMES), name


def test_split_mnist_covers_three_scenarios_at_the_tables_two_memory_sizes(repo_root: Path) -> None:
    """split_mnist.yaml: every method at 1,100 samples; split_mnist_200.yaml: the rehearsal methods at
    200, with every other setting the same (so the two memory sizes compare like for like)."""
    main, small = (load_sweep(repo_root / "sweeps" / name) for name in ("split_mnist.yaml", "split_mnist_200.yaml"))
    for spec in (main, small):
        assert spec.grid["benchmark.scenario"] == ["task", "domain", "class"] and len(spec.grid["seed"]) == 5
    assert small.grid["seed"] == main.grid["seed"] and set(small.grid["method"]) == {"er", "derpp", "cls"}
    assert "replay.capacity=1100" in main.base.overrides and "replay.capacity=200" in small.base.overrides
    same = [o for o in main.base.overrides if not o.startswith("replay.capacity")]
    assert same == [o for o in small.base.overrides if not o.startswith("replay.capacity")]
    trials = expand(main, repo_root / "sweeps" / "split_mnist.yaml", "sid")
    assert len(trials) == 3 * 8 * 5
    rehearsal = {t.config["replay"]["capacity"] for t in trials if t.method in ("er", "derpp", "cls")}
    assert rehearsal == {1100}


def test_seed_spellings_of_the_comparison() -> None:
    spec = parse_sweep("name: s\ngrid:\n  seed: [1]\n  mode: [sleep, nosleep]\ncompare: {treatment: sleep, control: nosleep}\n")
    assert (spec.compare.axis, spec.compare.treatment, spec.compare.control) == ("method", "cls", "nosleep")
    assert parse_sweep("name: s\ngrid:\n  seed: [1]\n").compare.control == "nosleep"


def test_gpu_sweep_shares_gpus(repo_root: Path) -> None:
    spec = load_sweep(repo_root / "sweeps" / "toy_ablation_gpu.yaml")
    assert spec.resources.gpus_per_worker == 0.5 and "train=rtx4070" in spec.base.overrides


def test_defaults() -> None:
    spec = parse_sweep("name: s\ngrid:\n  seed: [1]\n")
    assert spec.storage == "outputs/sweeps" and spec.retries == 2 and spec.resources.workers_per_trial == 1
    assert spec.resources.max_concurrent_trials is None and not spec.wandb.enabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: s\ngrid:\n  seed: [1]\nwandb:\n  projekt: x\n", "s.yaml:5: wandb.projekt: unknown key"),
        (
            "name: s\ngrid:\n  seed: [1]\nretries: -1\n",
            "s.yaml:4: retries: Input should be greater than or equal to 0 (given: -1)",
        ),
        (
            "name: s\ngrid:\n  seed: [1]\nresources:\n  gpus_per_worker: 1.5\n",
            "s.yaml:5: resources.gpus_per_worker",
        ),
        ("grid:\n  seed: [1]\n", "s.yaml:1: name: required key is missing"),
        ("name: s\ngrid:\n  mode: [sleep, sleep]\n", "axis `mode` repeats a value"),
        ("- a\n- b\n", "s.yaml: a sweep file is a YAML mapping"),
        ("name: s\ngrid:\n\tseed: [1]\n", "s.yaml:3:1: invalid YAML"),
    ],
)
def test_errors_name_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(UserError) as error:
        parse_sweep(text, "s.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_every_field_is_described() -> None:
    def walk(model: type) -> None:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation)

    walk(SweepSpec)


def test_sweep_files_are_yaml_1_2_like_run_configs(tmp_path: Path) -> None:
    """`off` stays text and `1e-3` is a number, as in run configs (PyYAML's 1.1 made them false and '1e-3')."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ngrid:\n  seed: [1]\n  consolidation.refresh.policy: [off, absorbed]\n  experts.fast_lr: [1e-3, 5e-3]\n"
    )
    spec = load_sweep(path)
    assert spec.grid["consolidation.refresh.policy"] == ["off", "absorbed"]
    assert spec.grid["experts.fast_lr"] == [0.001, 0.005]
    trials = expand(spec, path, "sid")
    assert {t.config["consolidation"]["refresh"]["policy"] for t in trials} == {"off", "absorbed"}
    assert {t.config["experts"]["fast_lr"] for t in trials} == {0.001, 0.005}


def test_binary_sweep_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(UserError, match=r"s.yaml: not a YAML text file \(byte 0 is not UTF-8\)"):
        load_sweep(path)


SWEEP_SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "sweep.schema.json"
HEADER = "# yaml-language-server: $schema="


def test_the_committed_sweep_schema_is_the_generated_one() -> None:
    from biollm_platform.sweep.schema import sweep_json_schema

    assert json.loads(SWEEP_SCHEMA.read_text()) == sweep_json_schema(), (
        "schemas/sweep.schema.json is stale: uv run biollm sweep schema --out schemas/sweep.schema.json"
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_sweeps_validate_against_the_committed_schema(repo_root: Path, name: str) -> None:
    path = repo_root / "sweeps" / name
    header = path.read_text().splitlines()[0]
    assert header.startswith(HEADER) and (path.parent / header.removeprefix(HEADER)).resolve() == SWEEP_SCHEMA
    validator = jsonschema.Draft202012Validator(json.loads(SWEEP_SCHEMA.read_text()))
    data, _ = load_yaml_document(path.read_text(), str(path))
    assert [error.message for error in validator.iter_errors(data)] == []


def test_the_sweep_schema_refuses_an_axis_that_is_no_config_key() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SWEEP_SCHEMA.read_text()))
    errors = [e.message for e in validator.iter_errors({"name": "s", "grid": {"experts.num_expertz": [1]}})]
    assert any("'experts.num_expertz' is not one of" in message for message in errors)
