"""`biollm config`: show the resolved run configuration, list presets, print the schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

# Each command imports what it needs when it runs (pydantic models, YAML, rich): `--help` stays fast.

app = typer.Typer(
    help="Inspect the run configuration: presets, overrides and the schema.", no_args_is_help=True
)

Overrides = Annotated[
    list[str] | None,
    typer.Argument(
        help="Overrides: preset selection (train=cpu), dotted keys (experts.num_experts=16), "
        "top-level keys (seed=42), a method (method=er, with its keys method.alpha=0.2); values are YAML "
        "(true, 1e-3, null, [a,b]).",
        show_default=False,
    ),
]
Files = Annotated[
    list[Path] | None,
    typer.Option(
        "--file",
        "-f",
        help="YAML override file (nested keys; `groups: {train: cpu}` selects presets); repeatable, "
        "applied in order before the command-line overrides.",
        show_default=False,
    ),
]


@app.command("show")
def show(
    overrides: Overrides = None,
    files: Files = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print the validated run configuration after presets, files and overrides."""
    import yaml

    from biollm_core.config.loader import compose_config, config_to_dict, load_config_dict

    composed = compose_config(overrides or [], files or [])
    data = config_to_dict(load_config_dict(composed.data, origins=composed.origins))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    groups = " ".join(f"{group}={name}" for group, name in composed.groups.items())
    text = f"# presets: {groups}\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(text, "yaml", background_color="default"))
    else:
        typer.echo(text, nl=False)


@app.command("presets")
def presets() -> None:
    """List the presets of each config group (select one with GROUP=NAME, e.g. train=cpu)."""
    from biollm_core.config.loader import presets_by_group

    for group, names in presets_by_group().items():
        typer.echo(f"{group}: {', '.join(names)}")


SchemaOut = Annotated[
    Path | None,
    typer.Option("--out", help="Write the schema to this file instead of printing it.", show_default=False),
]


def emit_schema(schema: dict, out: Path | None) -> None:
    """Print a JSON Schema, or write it to ``out`` (the repository's schemas/ files are written this way)."""
    text = json.dumps(schema, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as error:  # a file where a directory should be, a read-only place, a full disk
        from biollm_core.errors import UserError

        raise UserError(f"--out {out}: cannot write it ({error.strerror or error})") from None
    typer.echo(f"wrote {out}", err=True)


@app.command("schema")
def schema(out: SchemaOut = None) -> None:
    """Print the JSON Schema of a run-config file (presets, --file, config.yaml): nested or dotted keys, groups.

    The repository ships it as schemas/run-config.schema.json; put
    `# yaml-language-server: $schema=<path to it>` at the top of a YAML file for completion in editors.
    """
    from biollm_core.config.file_schema import run_config_file_schema
    from biollm_core.config.loader import presets_by_group

    emit_schema(run_config_file_schema(presets_by_group()), out)
