"""Command-line overrides in the seed's Hydra-like form.

    train=rtx4070                 select a preset of a config group (model, benchmark, train)
    method=derpp                  select a continual method (the seed's mode=sleep|nosleep: cls|nosleep)
    experts.num_experts=64        set a key (dotted path into the config)
    seed=42                       set a top-level key
    logging.wandb_tags=[a,b]      values are YAML: true, 1e-3, null, [a,b], {k: v}
    ewc.lambda=10  ewc.lambda_=10 both spellings of the EWC strength

`key=` sets the empty string. Plain text that is not valid YAML (`run_name=@x`) stays text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from biollm_core.config.yaml_source import parse_yaml_value
from biollm_core.errors import UserError
from biollm_core.methods.registry import SEED_MODES

GROUPS: tuple[str, ...] = ("model", "benchmark", "train", "method")
"""Config groups, merged in this order: presets in biollm_core/conf/<group>/; the `method` group's
presets are the registered methods (``biollm_core.methods.registry``), each selecting its section."""
METHOD_GROUP = "method"

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ALIASES: dict[tuple[str, ...], tuple[str, ...]] = {("ewc", "lambda_"): ("ewc", "lambda")}

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Override:
    """One parsed `key=value` argument."""

    text: str
    path: KeyPath
    value: Any

    @property
    def group(self) -> str | None:
        """The group this override selects a preset of (`train=cpu`), or None for a key assignment."""
        if len(self.path) == 1 and self.path[0] in GROUPS and isinstance(self.value, str):
            return self.path[0]
        return None


def parse_override(text: str) -> Override:
    """Parse `key=value`; raise UserError naming the argument when it is malformed."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise UserError(
            f"override {text!r}: expected key=value with a dotted key, "
            "e.g. experts.num_experts=64, method=er or train=cpu"
        )
    try:
        value = parse_yaml_value(raw.strip())
    except UserError as error:
        raise UserError(f"override {text!r}: {error}") from None
    path = canonical_path(tuple(key.split(".")))
    if path == ("mode",):  # the seed's spelling of the method group
        return Override(text=text, path=(METHOD_GROUP,), value=seed_mode(value, f"override {text!r}"))
    return Override(text=text, path=path, value=value)


def seed_mode(value: Any, where: str) -> str:
    """The method the seed's `mode` value names (sleep -> cls, nosleep -> nosleep); UserError otherwise."""
    if not isinstance(value, str) or value not in SEED_MODES:
        spellings = ", ".join(f"{mode} (= method={name})" for mode, name in SEED_MODES.items())
        raise UserError(f"{where}: mode must be one of {spellings}, got {value!r}")
    return SEED_MODES[value]


def parse_overrides(texts: Iterable[str]) -> list[Override]:
    """Parse every override in order."""
    return [parse_override(text) for text in texts]


def canonical_path(path: KeyPath) -> KeyPath:
    """Map alternative spellings of a key to the one the schema validates (`ewc.lambda_` -> `ewc.lambda`)."""
    for alias, canonical in _ALIASES.items():
        if path[: len(alias)] == alias:
            return canonical + path[len(alias) :]
    return path


def flatten(data: Mapping[str, Any], prefix: KeyPath = ()) -> list[tuple[KeyPath, Any]]:
    """The leaf assignments of a nested mapping, in order; dotted keys are split, aliases resolved.

    A nested mapping merges key by key; an empty one assigns nothing; lists and scalars are leaves.
    """
    leaves: list[tuple[KeyPath, Any]] = []
    for key, value in data.items():
        path = canonical_path((*prefix, *str(key).split(".")))
        if isinstance(value, Mapping):
            leaves.extend(flatten(value, path))
        else:
            leaves.append((path, value))
    return leaves


def set_path(data: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Assign `value` at a dotted path, creating (or replacing non-mapping) parents as needed."""
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
