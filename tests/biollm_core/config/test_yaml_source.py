from __future__ import annotations

from pathlib import Path

import pytest

from biollm_core.config.yaml_source import parse_yaml_value, read_yaml_mapping
from biollm_core.errors import UserError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-3", 1e-3),
        ("5.0e-3", 5e-3),
        ("-2", -2),
        ("0x10", 16),
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
        ("off", "off"),  # YAML 1.1 would make these booleans
        ("yes", "yes"),
        ("010", "010"),  # ... and this octal 8
        ("2024-01-01", "2024-01-01"),  # ... and this a date
        ("1:30", "1:30"),  # ... and this 90
        ("[1, a]", [1, "a"]),
    ],
)
def test_yaml_12_scalars(text: str, value: object) -> None:
    parsed = parse_yaml_value(text)
    assert parsed == value
    assert type(parsed) is type(value)


def test_read_yaml_mapping_records_key_lines(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("# comment\nexperts:\n  num_experts: 4\n\nreplay.batch_size: 8\n")
    data, lines = read_yaml_mapping(file)
    assert data == {"experts": {"num_experts": 4}, "replay.batch_size": 8}
    assert lines == {("experts",): 2, ("experts", "num_experts"): 3, ("replay", "batch_size"): 5}


def test_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    file = tmp_path / "empty.yaml"
    file.write_text("# nothing yet\n")
    assert read_yaml_mapping(file) == ({}, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("experts:\n  top_k: 2\n  top_k: 3\n", r"bad.yaml:3: duplicate key 'experts.top_k'"),
        ("experts:\n  top_k: [1, 2\n", r"bad.yaml:3:1: invalid YAML"),
        ("- a\n- b\n", r"bad.yaml:1: expected a mapping of config keys, got a list"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(UserError, match=message):
        read_yaml_mapping(file)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="config file not found: .*nope.yaml"):
        read_yaml_mapping(tmp_path / "nope.yaml")
