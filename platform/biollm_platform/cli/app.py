"""The `biollm` command: one Typer app, one module per command group, one error handler.

Errors the user can cause (biollm_core.errors.UserError, a missing file) become one line on stderr,
prefixed `error:`, and exit code 2; `biollm --debug ...` shows the traceback instead.

Start-up is kept short: the command modules import only Typer and the standard library at the top;
each command imports torch, Ray, W&B, transformers or matplotlib when it runs (a test checks which).
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

try:  # Typer >= 0.22 vendors click; its exceptions are not the click package's
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older Typer on the click package
    from click.exceptions import NoArgsIsHelpError, UsageError

from biollm_core.errors import UserError
from biollm_platform.cli import bench, config_cmd, data, doctor, results, sweep, train

_DEBUG = "biollm.debug"  # key in click's ctx.meta, shared by every command of one invocation
# OSErrors that mean "this path cannot be used" (read-only, full, not a directory, no permission)
PATH_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR, errno.EACCES,
                         errno.EPERM, errno.ENAMETOOLONG, errno.ELOOP})


class _HandleUserErrors(TyperGroup):
    """The root command group; it turns known errors into one message line and exit code 2."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Click's usage errors (a bad option value, a missing argument) as one line too, not a panel."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError:
            return super().main(args, prog_name, complete_var, standalone_mode=True, **extra)  # prints help
        except UsageError as error:
            where = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
            print_error(UserError(error.format_message().replace("Value error, ", "") + where))
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UserError, FileNotFoundError) as error:
            if ctx.meta.get(_DEBUG):
                raise
            print_error(error)
            raise typer.Exit(code=2) from None
        except OSError as error:  # a path the user gave that cannot be written: one line, not a traceback
            if ctx.meta.get(_DEBUG) or error.errno not in PATH_ERRNOS:
                raise
            print_error(UserError(f"{error.strerror or os.strerror(error.errno)}: {error.filename or ''}".rstrip(": ")))
            raise typer.Exit(code=2) from None


def print_error(error: BaseException) -> None:
    """Print an error's message on stderr, `error:` before each of its lines."""
    if isinstance(error, FileNotFoundError) and error.filename is not None:
        message = f"file not found: {error.filename}"
    else:
        message = str(error) or type(error).__name__
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    for line in message.splitlines():
        console.print(f"[bold red]error:[/] {escape(line)}")


EXIT_CODES = (
    "Exit codes: 0 success; 1 a run or sweep that failed (a trial error, a failed Ray Job, "
    "--require-cuda without a GPU); 2 bad input (a config key, a file, an option, an address), "
    "with one line on stderr; 130 interrupted."
)

app = typer.Typer(
    name="biollm",
    cls=_HandleUserErrors,
    help="Continual-learning experiments with a CLS learner: configs, sweeps on Ray, results.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_show_locals=False,  # locals may hold secrets (W&B keys)
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"biollm {version('biollm')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error instead of one line.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version of biollm and exit."),
    ] = False,
) -> None:
    """Continual-learning experiments with a CLS learner: configs, sweeps on Ray, results."""
    ctx.meta[_DEBUG] = debug


# Command groups: one module each in biollm_platform/cli/ exposing a Typer `app` (or one command), one line each.
app.add_typer(config_cmd.app, name="config")
app.command("train")(train.train)
app.add_typer(sweep.app, name="sweep")
app.add_typer(results.app, name="results")
app.add_typer(data.app, name="data")
app.command("doctor")(doctor.doctor)
app.add_typer(bench.app, name="bench")


def main() -> None:
    """Console-script entry point (`biollm`)."""
    app(prog_name="biollm")
