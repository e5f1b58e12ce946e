"""The JSON Schema of a run-config YAML file, as the loader reads one (presets, `--file`, config.yaml).

``RunConfig.model_json_schema()`` describes the validated config, not the files the loader accepts:
a file may select presets (`groups: {train: cpu}`), write keys dotted at any depth
(`experts.num_experts: 4`, `consolidation.refresh.policy: off`), use the alias `ewc.lambda_`, write
`consolidation.refresh: false`, and set only some keys (every key has a default). This module turns the
model's schema into that file schema; the repository ships it as ``schemas/run-config.schema.json``
(written by ``biollm config schema --out``) for editors (`# yaml-language-server: $schema=...`) and CI.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from biollm_core.config.overrides import GROUPS
from biollm_core.config.schema import RunConfig
from biollm_core.methods.registry import METHOD_NAMES, SECTIONS, SEED_MODES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_ALIASES = {"EwcConfig": {"lambda_": "lambda"}}  # the loader's other spellings of a key
_SHORTHANDS = {("ConsolidationConfig", "refresh"): {"type": "boolean", "description": "false = policy off, true = absorbed."}}


def _ref_names(prop: dict[str, Any]) -> list[str]:
    """The $defs names of a section's schema (also inside a shorthand's anyOf, or every member of the
    method union's oneOf); empty for a leaf."""
    return [ref.rsplit("/", 1)[-1] for candidate in (prop, *prop.get("anyOf", ()), *prop.get("oneOf", ()))
            if isinstance(ref := candidate.get("$ref"), str)]


def _dotted(defs: dict[str, Any], name: str) -> dict[str, Any]:
    """Every key of model ``name`` as written in a file: plain, aliased and dotted through sub-sections
    (under the method union, the keys of every method's section)."""
    out: dict[str, Any] = {}
    for key, prop in defs[name]["properties"].items():
        out[key] = prop
        for child in _ref_names(prop):
            for sub_key, sub_prop in _dotted(defs, child).items():
                out.setdefault(f"{key}.{sub_key}", sub_prop)
    return out


def _file_properties(defs: dict[str, Any], name: str) -> None:
    """Rewrite $defs[name] in place: aliases, shorthands, and dotted keys into its sub-sections."""
    model = defs[name]
    properties = model["properties"]
    for key, prop in list(properties.items()):
        if (name, key) in _SHORTHANDS:
            properties[key] = {"description": prop.get("description", ""), "anyOf": [
                {k: v for k, v in prop.items() if k != "description"}, _SHORTHANDS[(name, key)]]}
    for alias, canonical in _ALIASES.get(name, {}).items():
        properties[alias] = {**properties[canonical], "description": f"Another spelling of `{canonical}`."}
    for key, prop in list(properties.items()):
        for child in _ref_names(prop):
            for sub_key, sub_prop in _dotted(defs, child).items():
                properties.setdefault(f"{key}.{sub_key}", sub_prop)
    model.pop("required", None)  # a file sets some keys; every key has a default


def run_config_file_schema(presets: dict[str, list[str]]) -> dict[str, Any]:
    """The JSON Schema of a run-config file; ``presets`` maps each config group to its preset names."""
    schema = copy.deepcopy(RunConfig.model_json_schema(by_alias=True))
    defs = schema.setdefault("$defs", {})
    defs["RunConfig"] = {k: schema.pop(k) for k in ("properties", "title", "type", "additionalProperties")}
    for name in list(defs):
        if "properties" in defs[name]:
            _file_properties(defs, name)
    root = copy.deepcopy(defs.pop("RunConfig"))
    method = root["properties"]["method"]
    root["properties"]["method"] = {"description": method.get("description", ""), "anyOf": [
        {k: v for k, v in method.items() if k != "description"},
        {"enum": list(METHOD_NAMES), "description": "A method by name, with its section's defaults."}]}
    root["properties"]["mode"] = {"enum": list(SEED_MODES), "description": "The seed's spelling of the method group: "
                                  + ", ".join(f"{m} = method {n}" for m, n in SEED_MODES.items()) + "."}
    root["properties"] = {
        "groups": {
            "type": "object",
            "additionalProperties": False,
            "description": "The preset each config group starts from (`groups: {train: cpu}`).",
            "properties": {group: {"enum": presets.get(group, [])} for group in GROUPS},
        },
        **root["properties"],
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": "https://biollm.invalid/schemas/run-config.schema.json",
        "title": "BioLLM run config file",
        "description": "A preset, a `--file` override file or biollm_core/conf/config.yaml: nested or dotted keys "
        "of the run config (every key optional), and `groups` to select presets. Values are YAML 1.2.",
        **{k: v for k, v in root.items() if k != "title"},
        "$defs": defs,
    }


def config_key_paths() -> list[str]:
    """Every dotted key of the run config, sections and aliases included (what a sweep axis may name)."""
    paths: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            keys = [name] + ([field.alias] if field.alias and field.alias != name else [])
            for key in keys:
                paths.append(prefix + key)
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                for key in keys:
                    walk(annotation, f"{prefix}{key}.")

    walk(RunConfig, "")
    for section in SECTIONS.values():  # `method.lambda`: a key of some method's section
        walk(section, "method.")
    paths.append("mode")  # the seed's spelling of the method axis
    return sorted(dict.fromkeys(paths))
