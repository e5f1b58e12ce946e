from __future__ import annotations

import pytest

from biollm_core.config.schema import RunConfig
from biollm_core.config.validation import Origin, validate_run_config
from biollm_core.errors import UserError


def _message(data: dict, origins: dict | None = None, source: str | None = None) -> str:
    with pytest.raises(UserError) as caught:
        validate_run_config(data, origins, source)
    return str(caught.value)


def test_valid_data_gives_a_run_config() -> None:
    assert validate_run_config({"seed": 3}) == RunConfig(seed=3)


def test_file_origins_prefix_and_other_origins_suffix() -> None:
    origins = {
        ("seed",): Origin("run.yaml:4", is_file=True),
        ("method", "name"): Origin("override 'method.name=x'", is_file=False),
    }
    lines = _message({"seed": "x", "method": {"name": "x"}}, origins).splitlines()
    assert (
        lines[0]
        == "run.yaml:4: seed: input should be a valid integer, unable to parse string as an integer, got 'x'"
    )
    assert lines[1] == (
        "method: unknown method 'x' (methods: cls, nosleep, finetune, ewc, lwf, er, derpp, joint) (from override 'method.name=x')"
    )


def test_section_error_takes_the_latest_origin_below_it() -> None:
    origins = {
        ("experts", "num_experts"): Origin("a.yaml:2", is_file=True, order=1),
        ("experts", "top_k"): Origin("b.yaml:7", is_file=True, order=2),
    }
    message = _message({"experts": {"num_experts": 2, "top_k": 3}}, origins)
    assert message == "b.yaml:7: experts: top_k (3) must not exceed num_experts (2)"


def test_list_item_error_points_at_the_list() -> None:
    origins = {("logging", "wandb_tags"): Origin("run.yaml:9", is_file=True)}
    message = _message({"logging": {"wandb_tags": ["ok", 3]}}, origins)
    assert message == "run.yaml:9: logging.wandb_tags.1: input should be a valid string, got 3"


def test_unknown_key_without_a_close_match_lists_the_valid_keys() -> None:
    message = _message({"repro": {"zzz": 1}})
    assert message == "unknown key 'repro.zzz' (valid keys in 'repro': deterministic, cudnn_benchmark)"
    assert _message({"ewc": {"lamda": 1}}) == "unknown key 'ewc.lamda' (did you mean 'lambda'?)"


def test_source_prefixes_lines_without_an_origin() -> None:
    assert _message({"seed": None}, source="trial 3").startswith(
        "trial 3: seed: input should be a valid integer"
    )
