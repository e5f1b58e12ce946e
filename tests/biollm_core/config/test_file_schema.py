"""The run-config file schema: the committed file is the generated one, and it accepts what the loader accepts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from biollm_core.config.file_schema import config_key_paths, run_config_file_schema
from biollm_core.config.loader import CONF_DIR, config_to_dict, load_config, presets_by_group
from biollm_core.config.yaml_source import read_yaml_mapping

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "schemas" / "run-config.schema.json"
SHIPPED = sorted(CONF_DIR.rglob("*.yaml"))
HEADER = "# yaml-language-server: $schema="


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one() -> None:
    assert json.loads(COMMITTED.read_text()) == run_config_file_schema(presets_by_group()), (
        "schemas/run-config.schema.json is stale: uv run biollm config schema --out schemas/run-config.schema.json"
    )


def test_config_schema_prints_the_committed_file() -> None:
    from biollm_platform.cli.app import app

    result = CliRunner().invoke(app, ["config", "schema"])
    assert result.exit_code == 0 and result.stdout == COMMITTED.read_text()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(CONF_DIR)))
def test_every_shipped_preset_validates_and_names_the_schema(path: Path, validator) -> None:  # noqa: ANN001
    header = path.read_text().splitlines()[0]
    assert header.startswith(HEADER), f"{path}: first line should be {HEADER}<path>"
    assert (path.parent / header.removeprefix(HEADER)).resolve() == COMMITTED
    data, _ = read_yaml_mapping(path)  # the loader's own YAML 1.2 reading
    assert [error.message for error in validator.iter_errors(data)] == []


@pytest.mark.parametrize(
    "text",
    [
        "groups: {train: cpu, model: hf_causal_lm}\n",
        "experts.num_experts: 4\nconsolidation.refresh.policy: off\n",
        "consolidation:\n  refresh: false\n  refresh.reset_factor: 0.5\n",
        "ewc:\n  lambda_: 1\n",
        "ewc.lambda: 0\ntrain: {max_steps: 10}\nlogging.wandb_tags: [a, b]\n",
    ],
)
def test_what_the_loader_accepts_the_schema_accepts(text: str, tmp_path: Path, validator) -> None:  # noqa: ANN001
    file = tmp_path / "run.yaml"
    file.write_text(text)
    load_config(override_files=[file])  # the loader accepts it ...
    assert [e.message for e in validator.iter_errors(read_yaml_mapping(file)[0])] == []  # ... and so does the schema


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"experts.num_expert": 3}, "'experts.num_expert' was unexpected"),
        ({"groups": {"train": "cpux"}}, "'cpux' is not one of"),
        ({"consolidation": {"refresh.policy": "of"}}, "'of' is not one of"),
        ({"seed": "x"}, "'x' is not of type 'integer'"),
    ],
)
def test_what_the_loader_refuses_the_schema_refuses(data: dict, problem: str, validator) -> None:  # noqa: ANN001
    assert any(problem in error.message for error in validator.iter_errors(data))


def test_a_resolved_config_is_a_valid_file(validator) -> None:  # noqa: ANN001
    data = config_to_dict(load_config(["train=cpu", "mode=nosleep"]))  # what `config show --json` prints
    assert [e.message for e in validator.iter_errors(json.loads(json.dumps(data)))] == []
    assert yaml.safe_dump(data)  # and its YAML form is what `config show` prints


def test_key_paths_cover_sections_leaves_and_aliases() -> None:
    paths = config_key_paths()
    assert {"seed", "experts", "experts.num_experts", "consolidation.refresh.policy", "ewc.lambda", "ewc.lambda_"} <= set(paths)
    assert os.path.commonprefix(paths) == ""
