"""Validate a merged config dict into a RunConfig; explain failures one line per problem.

Each line names the key's dotted path, what was given and what was expected, and where the value
came from: `file.yaml:12: ...` for YAML files, `... (from override 'x=y')` for command-line overrides.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from biollm_core.config.overrides import GROUPS, METHOD_GROUP, KeyPath
from biollm_core.config.schema import RunConfig
from biollm_core.errors import UserError
from biollm_core.methods.registry import METHOD_NAMES, SECTIONS


@dataclass(frozen=True)
class Origin:
    """Where a config value was set: a file line (`conf.yaml:3`) or an override (`override 'x=1'`)."""

    label: str
    is_file: bool
    order: int = 0

    def place(self, message: str) -> str:
        """Prefix a file location, or append any other origin."""
        return f"{self.label}: {message}" if self.is_file else f"{message} (from {self.label})"


Origins = Mapping[KeyPath, Origin]


def validate_run_config(
    data: Mapping[str, Any], origins: Origins | None = None, source: str | None = None
) -> RunConfig:
    """RunConfig.model_validate(data), with a ValidationError turned into a UserError.

    `origins` maps key paths to where they were set; `source` prefixes lines without an origin.
    """
    try:
        return RunConfig.model_validate(dict(data))
    except ValidationError as error:
        lines = [_explain(detail, origins or {}, source) for detail in error.errors()]
        raise UserError("\n".join(dict.fromkeys(lines))) from None


def _config_loc(loc: tuple[Any, ...]) -> KeyPath:
    """A pydantic error location as a config key path: the discriminated `method` union puts the
    method's name after `method` (`method.derpp.alpha`); the key is `method.alpha`."""
    path = tuple(str(part) for part in loc)
    if len(path) > 1 and path[0] == METHOD_GROUP and path[1] in METHOD_NAMES:
        return (path[0], *path[2:]), path[1]
    return path, None


def _explain(detail: ErrorDetails, origins: Origins, source: str | None) -> str:
    """One line for one pydantic error."""
    loc, method = _config_loc(detail["loc"])
    dotted = ".".join(loc)
    kind = detail["type"]
    given = detail.get("input")
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        tag = _show(detail.get("ctx", {}).get("tag", given))
        message = f"{dotted or METHOD_GROUP}: unknown method {tag} (methods: {', '.join(METHOD_NAMES)})"
    elif kind == "extra_forbidden":
        message = f"unknown key '{dotted}'{_suggestion(loc, method)}"
    elif kind == "model_type":
        message = f"{dotted}: expected a mapping of {loc[-1]} keys, got {_show(given)}"
        if len(loc) == 1 and loc[0] in GROUPS and isinstance(given, str):
            message += (
                f" (to select the preset write `{loc[0]}={given}` on the command line "
                f"or `groups: {{{loc[0]}: {given}}}` in a YAML file)"
            )
    elif kind in {"value_error", "assertion_error"}:
        text = re.sub(r"^(Value|Assertion) error, ", "", detail["msg"])
        message = f"{dotted}: {text}" if dotted else text
    else:
        message = f"{dotted}: {_lower_first(detail['msg'])}"
        if not isinstance(given, Mapping):
            message += f", got {_show(given)}"
    origin = _find_origin(loc, detail["msg"], origins)
    if origin is not None:
        return origin.place(message)
    return f"{source}: {message}" if source else message


def _find_origin(loc: KeyPath, msg: str, origins: Origins) -> Origin | None:
    """The latest origin of the key, of a key below it, or of a dotted key the message names."""
    if loc in origins:
        return origins[loc]
    for depth in range(len(loc) - 1, 0, -1):
        if loc[:depth] in origins:
            return origins[loc[:depth]]
    candidates = [origin for path, origin in origins.items() if path[: len(loc)] == loc]
    if not loc:  # a whole-config check: use the keys its message names
        named = {tuple(word.split(".")) for word in re.findall(r"\b[a-z_]+\.[a-z_]+\b", msg)}
        candidates = [origin for path, origin in origins.items() if path in named]
    return max(candidates, key=lambda origin: origin.order, default=None)


def _suggestion(loc: KeyPath, method: str | None = None) -> str:
    """` (did you mean 'x'?)` from the keys valid at that place, or the list of valid keys."""
    valid = _valid_keys(loc[:-1], method)
    if not valid:
        return ""
    close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    where = f"in '{'.'.join(loc[:-1])}'" if len(loc) > 1 else "at the top level"
    return f" (valid keys {where}: {', '.join(valid)})"


def _valid_keys(section: KeyPath, method: str | None = None) -> list[str]:
    """Field names (by alias) of the config model at a section path; empty if it is not a model.

    Under `method` the model is the section of the method being validated (``method``)."""
    model: type[BaseModel] = RunConfig
    if section[:1] == (METHOD_GROUP,) and method in SECTIONS:
        model, section = SECTIONS[method], section[1:]
    for key in section:
        field = model.model_fields.get(key) or next(
            (f for f in model.model_fields.values() if f.alias == key), None
        )
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]


def _show(value: Any) -> str:
    """A short repr of a given value."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
