"""Reading YAML config text: YAML 1.2 scalars and the line of every key.

PyYAML implements YAML 1.1, where `off` is a boolean, `1e-3` a string and `010` an octal number.
Config values written by people should mean what they look like, so the loader here resolves only
the YAML 1.2 core schema: `true`/`false`, `null`/`~`, decimal and hex integers and floats with or
without a dot (`1e-3`). Everything else is a string (`off`, `2024-01-01`, `cuda:0`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from biollm_core.errors import UserError

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_DROPPED = {_BOOL, _INT, _FLOAT, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}


class _CoreLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalar resolution."""


_CoreLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CoreLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_CoreLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"), list("-+0123456789")
)
_CoreLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_yaml_value(text: str) -> Any:
    """Parse one command-line value as YAML (`true`, `1e-3`, `null`, `[a,b]`); plain text stays text."""
    if text == "":
        return ""
    try:
        return yaml.load(text, Loader=_CoreLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        if text.lstrip()[:1] in "[{":
            raise UserError(f"cannot parse value {text!r}: {_problem(error)}") from None
        return text  # e.g. `@run`, which YAML reserves: the user meant the text


def read_yaml_text(path: Path, what: str = "config file") -> str:
    """A YAML file's text; UserError (one line) for a missing file, a directory or bytes that are not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{what} is a directory: {path}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not a YAML text file (byte {error.start} is not UTF-8)") from None
    except OSError as error:
        raise UserError(f"{what} {path}: cannot be read: {error.strerror or error}") from None


def load_yaml_document(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document with the YAML 1.2 core schema; return its data and its node tree.

    Raises UserError naming ``source:line:column`` for a syntax error.
    """
    loader = _CoreLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise UserError(f"{where}: invalid YAML: {_problem(error)}") from None
    finally:
        loader.dispose()
    return data, node


def read_yaml_mapping(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Read a YAML file holding a mapping; return it and the 1-based line of every key path.

    Raises UserError for a missing or unreadable file, a syntax error (file:line:column), a duplicate
    key (file:line) or a document that is not a mapping. An empty file is an empty mapping.
    """
    data, node = load_yaml_document(read_yaml_text(path), str(path))
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise UserError(f"{path}:1: expected a mapping of config keys, got a {type(data).__name__}")
    lines: dict[tuple[str, ...], int] = {}
    _collect_lines(node, (), path, lines)
    return data, lines


def _collect_lines(
    node: yaml.Node, prefix: tuple[str, ...], path: Path, lines: dict[tuple[str, ...], int]
) -> None:
    """Record the line of every mapping key under `node`; refuse duplicate keys."""
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
            continue
        key = key_node.value
        line = key_node.start_mark.line + 1
        if key in seen:
            dotted = ".".join((*prefix, key))
            raise UserError(f"{path}:{line}: duplicate key '{dotted}'")
        seen.add(key)
        key_path = (*prefix, *key.split("."))
        lines[key_path] = line
        _collect_lines(value_node, key_path, path, lines)


def _problem(error: yaml.YAMLError) -> str:
    """The one-line reason of a YAML error, without its multi-line context."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return " ".join(str(problem).split())
