"""Compose a RunConfig from presets, YAML files and command-line overrides.

Order (later wins, key by key):

1. biollm_core/conf/config.yaml (top-level defaults and the default preset of each group);
2. the selected preset of each group, in the order model, benchmark, train — a preset is a partial
   config merged at the root, so a train preset may also set `replay.batch_size` or `experts.*`;
3. override files, in the order given;
4. command-line overrides, in the order given;
then the result is validated against the schema.

Group selection is resolved first, wherever it appears, as in Hydra: `train=cpu` on the command line,
or `groups: {train: cpu}` at the top of a YAML file (config.yaml included). Every other key of a YAML
file is config, nested (`experts: {num_experts: 4}`) or dotted (`experts.num_experts: 4`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biollm_core.config.overrides import GROUPS, METHOD_GROUP, KeyPath, Override, flatten, parse_overrides, seed_mode, set_path
from biollm_core.config.schema import RunConfig
from biollm_core.config.validation import Origin, validate_run_config
from biollm_core.config.yaml_source import read_yaml_mapping
from biollm_core.errors import UserError
from biollm_core.methods.registry import METHOD_NAMES

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
"""The presets shipped with the package."""


def available_presets(group: str) -> list[str]:
    """Names of the presets of a config group (file stems in conf/<group>/, or the methods), sorted."""
    if group == METHOD_GROUP:
        return sorted(METHOD_NAMES)
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


@dataclass(frozen=True)
class YamlSource:
    """A YAML config file: its mapping without `groups`, the groups it selects, and key lines."""

    path: Path
    data: dict[str, Any]
    groups: dict[str, str]
    lines: dict[KeyPath, int]

    @classmethod
    def read(cls, path: Path) -> YamlSource:
        """Read and check a YAML config file (UserError with file:line on any problem)."""
        data, lines = read_yaml_mapping(path)
        groups = _file_groups(data.pop("groups", None), path, lines)
        if "mode" in data:  # the seed's spelling of the method group
            where = f"{path}:{lines.get(('mode',), 1)}"
            if METHOD_GROUP in groups:
                raise UserError(f"{where}: mode and groups.method both select the method; keep one")
            groups[METHOD_GROUP] = seed_mode(data.pop("mode"), where)
        return cls(path, data, groups, lines)

    def where(self, path: KeyPath) -> str:
        """`file:line` of a key path (or of its nearest parent)."""
        for depth in range(len(path), 0, -1):
            if path[:depth] in self.lines:
                return f"{self.path}:{self.lines[path[:depth]]}"
        return f"{self.path}:1"


@dataclass
class ComposedConfig:
    """A merged, not yet validated config dict, where each key was set, and the selected presets."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[KeyPath, Origin] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)

    def assign(self, path: KeyPath, value: Any, origin: Origin) -> None:
        """Set one key, remembering its origin (newer origins get a higher order)."""
        set_path(self.data, path, value)
        self.origins[path] = Origin(origin.label, origin.is_file, order=len(self.origins) + 1)

    def merge(self, source: YamlSource) -> None:
        """Merge a YAML file key by key; each key's origin is its file and line."""
        for path, value in flatten(source.data):
            self.assign(path, value, Origin(source.where(path), is_file=True))


def compose_config(overrides: Sequence[str] = (), override_files: Sequence[Path] = ()) -> ComposedConfig:
    """Merge defaults, group presets, override files and overrides (see the module docstring)."""
    parsed = parse_overrides(overrides)
    defaults = YamlSource.read(CONF_DIR / "config.yaml")
    user_files = [YamlSource.read(Path(file)) for file in override_files]
    composed = ComposedConfig()
    selected_at: dict[str, str] = {}
    for source in (defaults, *user_files):
        for group, name in source.groups.items():
            composed.groups[group], selected_at[group] = name, source.where(("groups", group))
    for override in parsed:
        if override.group is not None:
            composed.groups[override.group] = override.value
            selected_at[override.group] = f"override {override.text!r}"
    composed.merge(defaults)
    for group in GROUPS:
        if group not in composed.groups:
            raise UserError(f"{defaults.path}: groups.{group}: no default preset")
        composed.merge(_preset_source(group, composed.groups[group], selected_at[group]))
    for source in user_files:
        composed.merge(source)
    for override in parsed:
        if override.group is None:
            _apply_override(composed, override)
    return composed


def load_config(overrides: Sequence[str] = (), override_files: Sequence[Path] = ()) -> RunConfig:
    """The validated RunConfig of presets + override files + overrides; UserError on any problem."""
    composed = compose_config(overrides, override_files)
    return validate_run_config(composed.data, composed.origins)


def load_config_dict(
    data: Mapping[str, Any], source: str | None = None, origins: Mapping[KeyPath, Origin] | None = None
) -> RunConfig:
    """Validate an already merged config dict (e.g. a sweep trial's); `source` names it in errors."""
    return validate_run_config(data, origins, source)


def config_digest(config: RunConfig) -> str:
    """sha256 (hex) of the resolved config: equal configs, equal digests, whatever files or overrides made them."""
    text = json.dumps(config_to_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """A JSON-safe dict of the config, keys by alias (`ewc.lambda`); load_config_dict reads it back."""
    return config.model_dump(mode="json", by_alias=True)


def _apply_override(composed: ComposedConfig, override: Override) -> None:
    """Assign a `key=value` override; a mapping value merges key by key (an empty one is a no-op)."""
    origin = Origin(f"override {override.text!r}", is_file=False)
    if isinstance(override.value, Mapping):
        for path, value in flatten(override.value, override.path):
            composed.assign(path, value, origin)
    else:
        composed.assign(override.path, override.value, origin)


def _file_groups(groups: Any, file: Path, lines: Mapping[KeyPath, int]) -> dict[str, str]:
    """Check a file's `groups:` mapping (group name -> preset name)."""
    if groups is None:
        return {}
    if not isinstance(groups, Mapping):
        raise UserError(
            f"{file}:{lines.get(('groups',), 1)}: 'groups' must map config groups to preset names, "
            f"e.g. groups: {{train: cpu}}; got {groups!r}"
        )
    for group, name in groups.items():
        where = f"{file}:{lines.get(('groups', str(group)), 1)}"
        if group not in GROUPS:
            raise UserError(f"{where}: unknown config group '{group}' (groups: {', '.join(GROUPS)})")
        if not isinstance(name, str):
            raise UserError(f"{where}: groups.{group}: expected a preset name, got {name!r}")
    return {str(group): name for group, name in groups.items()}


def _preset_source(group: str, name: str, selected_at: str) -> YamlSource:
    """A preset as a source to merge; a method preset selects that method's section (its defaults)."""
    if group == METHOD_GROUP and name in METHOD_NAMES:
        return YamlSource(Path(f"<method {name}>"), {"method": {"name": name}}, {}, {})
    return YamlSource.read(_preset_path(group, name, selected_at))


def _preset_path(group: str, name: str, selected_at: str) -> Path:
    """The file of a preset; UserError listing the available ones when there is none."""
    path = CONF_DIR / group / f"{name}.yaml"
    if group != METHOD_GROUP and "/" not in name and "\\" not in name and path.is_file():
        return path
    available = available_presets(group)
    close = difflib.get_close_matches(name, available, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UserError(
        f"{selected_at}: unknown {group} preset '{name}' ({hint}available: {', '.join(available)})"
    )


def presets_by_group() -> dict[str, list[str]]:
    """Every group's presets, for listings and checks."""
    return {group: available_presets(group) for group in GROUPS}
