from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from biollm_core.config.loader import load_config
from biollm_platform.cli.app import app

runner = CliRunner()


def test_show_prints_the_resolved_config_as_yaml(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "show", "train=cpu", "mode=nosleep", "ewc.lambda=2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# presets: model=tiny_transformer benchmark=toy train=cpu method=nosleep\n")
    data = yaml.safe_load(result.stdout)
    assert (data["device"], data["method"], data["ewc"]["lambda"]) == ("cpu", {"name": "nosleep"}, 2.0)
    shown = tmp_path / "shown.yaml"  # what `config show` prints loads back as an override file
    shown.write_text(result.stdout)
    assert load_config(override_files=[shown]) == load_config(["train=cpu", "mode=nosleep", "ewc.lambda=2"])


def test_show_a_method_shows_its_resolved_section() -> None:
    result = runner.invoke(app, ["config", "show", "--json", "method=derpp", "method.alpha=0.3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["method"] == {"name": "derpp", "alpha": 0.3, "beta": 0.5, "replay_batch_size": None}
    presets = runner.invoke(app, ["config", "presets"])
    assert "derpp" in presets.stdout and "joint" in presets.stdout


def test_show_json_and_files(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("groups: {model: hf_causal_lm}\nexperts:\n  num_experts: 4\n")
    result = runner.invoke(app, ["config", "show", "--json", "--file", str(file), "seed=9"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["model"]["provider"], data["experts"]["num_experts"], data["seed"]) == ("hf", 4, 9)


def test_bad_override_is_one_line_on_stderr_and_exit_2() -> None:
    result = runner.invoke(app, ["config", "show", "experts.num_expert=3"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: unknown key 'experts.num_expert' (did you mean 'num_experts'?) "
        "(from override 'experts.num_expert=3')"
    ]


def test_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "show", "--file", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"error: config file not found: {tmp_path / 'nope.yaml'}\n"


def test_debug_shows_the_exception() -> None:
    result = runner.invoke(app, ["--debug", "config", "show", "train=nope"])
    assert result.exit_code != 0
    assert "unknown train preset 'nope'" in str(result.exception)


def test_schema_is_json_with_sections() -> None:
    result = runner.invoke(app, ["config", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert {"experts", "model", "train", "ewc"} <= set(schema["properties"])
    assert "lambda" in schema["$defs"]["EwcConfig"]["properties"]


def test_presets_lists_every_group() -> None:
    result = runner.invoke(app, ["config", "presets"])
    assert result.exit_code == 0
    assert "train: cpu, default, mac_dev, qwen_0_5b_12gb, rtx4070" in result.stdout.splitlines()


def test_console_script_exits_2_with_one_line(repo_root: Path) -> None:
    """The installed `biollm` console script (pyproject's entry point), as a user runs it."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "biollm"), "config", "show", "experts.top_k=99"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: experts: top_k (99) must not exceed num_experts (8) (from override 'experts.top_k=99')"
    ]
