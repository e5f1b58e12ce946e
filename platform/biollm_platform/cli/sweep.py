"""`biollm sweep`: submit a sweep file to Ray (local or remote), follow, resume and stop it."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml
from rich.console import Console

from biollm_core.errors import UserError
from biollm_core.methods.registry import METHOD_NAMES, SEED_MODES
from biollm_platform.cli.config_cmd import SchemaOut, emit_schema

Executor = Literal["train_workers", "train_local"]  # == sweep.schema.Resources.executor (a test checks)

app = typer.Typer(
    help="Grids of seeds x methods x any config key on Ray Tune + Ray Train (local Ray or a remote cluster).",
    no_args_is_help=True,
)
DEFAULT_ROOT = Path("outputs/sweeps")
OnlyMethod = enum.Enum("OnlyMethod", {name: name for name in (*METHOD_NAMES, *SEED_MODES)}, type=str)  # --only's choices
RootOption = Annotated[Path, typer.Option("--root", help="Directory holding sweep directories.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _console(stderr: bool = False) -> Console:
    console = Console(highlight=False, stderr=stderr)
    if not console.is_terminal:  # a log or a pipe: no reason to squeeze tables into 80 columns
        console.width = max(console.width, 160)
    return console


def _find_sweep(sweep_id: str, root: Path) -> Path:
    candidate = Path(sweep_id)
    for path in (candidate, root / sweep_id):
        if (path / "manifest.json").is_file():
            return path.resolve()
    raise UserError(f"no sweep {sweep_id!r} under {root} (see `biollm sweep list`)")


def _trials_json(sweep_dir: Path, manifest) -> dict:  # noqa: ANN001
    base = manifest.storage or str(sweep_dir)
    return {
        "sweep_id": manifest.sweep_id,
        "dir": str(sweep_dir),
        "status": manifest.status,
        "address": manifest.address,
        "job_id": manifest.job_id,
        "trials": [
            {
                "trial_id": t.trial_id,
                "method": t.method,
                "seed": t.seed,
                "axes": t.axes,
                "state": t.state,
                "out_dir": f"{base}/{t.out_dir}",
                "step": t.step,
                "error": t.error,
            }
            for t in manifest.trials
        ],
    }


@app.command()
def submit(
    sweep_file: Annotated[Path, typer.Argument(help="The sweep YAML (see `biollm sweep schema`).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Run-config overrides for every trial (`train.max_steps=200`).")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray to use: none starts a local one; `auto` joins the local one; "
            "`http://head:8265` submits a Ray Job."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show every trial's resolved config and stop.")
    ] = False,
    only: Annotated[
        OnlyMethod | None,
        typer.Option(help="Run only this value of the grid's method axis (the seed's sleep|nosleep mean cls|nosleep)."),
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option(min=1, help="Trials at once (default: what the resources fit).")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Shortcut for the override train.max_steps=N.")
    ] = None,
    eval_interval: Annotated[
        int | None, typer.Option(min=1, help="Shortcut for the override train.eval_interval=N.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Root for the sweep directory (path or s3:// URI); overrides the file's `storage`."
        ),
    ] = None,
    executor: Annotated[
        Executor | None,
        typer.Option(
            help="Override the file's `resources.executor`: train_workers (a Ray Train worker group per "
            "trial) or train_local (one-worker trials run the engine in the Tune trial's process: less "
            "fixed cost per trial)."
        ),
    ] = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait", help="Return once submitted (remote: the job; local: a background driver)."
        ),
    ] = False,
    ship_code: Annotated[
        bool,
        typer.Option(help="Remote: upload this checkout's packages with the job (off: use the image's)."),
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show Ray's own logs.")] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object at the end (sweep, status, trials) on stdout; progress on stderr."),
    ] = False,
    sweep_id: Annotated[str | None, typer.Option(hidden=True)] = None,
    remote_job: Annotated[bool, typer.Option("--remote-job", hidden=True)] = False,
) -> None:
    """Expand SWEEP_FILE's grid and run every trial on Ray; print the sweep id, directory and results."""
    from biollm_platform.sweep import remote, runner
    from biollm_platform.sweep.bytecode import ensure_bytecode
    from biollm_platform.sweep.report import print_results

    console = _console(stderr=as_json)
    only = SEED_MODES.get(only.value, only.value) if only else None
    extra = [
        *(overrides or []),
        *([f"train.max_steps={max_steps}"] if max_steps else []),
        *([f"train.eval_interval={eval_interval}"] if eval_interval else []),
    ]
    prepared = runner.prepare(
        sweep_file, tuple(extra), only=only, max_concurrent=max_concurrent, storage=storage, sweep_id=sweep_id,
        executor=executor,
    )
    if dry_run and as_json:
        print(json.dumps({"sweep_id": prepared.sweep_id, "executor": prepared.spec.resources.executor,
                          "trials": [t.to_dict() for t in prepared.trials]}))
        return
    if dry_run:
        console.print(f"{len(prepared.trials)} trials: " + ", ".join(t.trial_id for t in prepared.trials))
        console.print(f"executor: {prepared.spec.resources.executor}")
        for trial in prepared.trials:
            console.print(f"[bold]{trial.trial_id}[/]  overrides: {' '.join(trial.overrides)}")
            console.print(yaml.safe_dump(trial.config, sort_keys=False), markup=False)
        return
    if remote.is_remote(address):
        job_id, local_dir = remote.submit_job(prepared, address, ship_code=ship_code, verbose=verbose)
        console.print(
            f"sweep {prepared.sweep_id} submitted as Ray Job {job_id} to {address}; record in {local_dir}"
        )
        console.print(
            f"follow: ray job logs --address {address} --follow {job_id}"
            f"   |   biollm sweep status {prepared.sweep_id}"
        )
        if no_wait:
            if as_json:
                print(json.dumps({"sweep_id": prepared.sweep_id, "job_id": job_id, "address": address,
                                  "status": "SUBMITTED", "dir": str(local_dir)}))
            return
        status = remote.wait_for_job(address, job_id, timeout_s=7 * 24 * 3600)
        console.print(f"job {job_id}: {status}")
        if as_json:
            print(json.dumps({"sweep_id": prepared.sweep_id, "job_id": job_id, "address": address,
                              "status": status, "dir": str(local_dir)}))
        raise typer.Exit(0 if status == "SUCCEEDED" else 1)
    if no_wait:
        pid, log = _start_background(
            sweep_file, extra, address, only, max_concurrent, storage, executor, prepared.sweep_id, console
        )
        if as_json:
            print(json.dumps({"sweep_id": prepared.sweep_id, "status": "STARTED", "pid": pid, "log": str(log),
                              "dir": str(prepared.sweep_dir)}))
        return
    # --json: stdout holds the final object only; what Ray prints meanwhile (worker errors) goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        ensure_bytecode(lambda line: console.print(line, markup=False))  # once per install, before Ray starts
        manifest, _ = runner.submit_local(
            prepared,
            address=address,
            verbose=verbose,
            console=None if remote_job else console,
            publish=remote.publish_line if remote_job else None,
            job_id=os.environ.get("RAY_JOB_SUBMISSION_ID") if remote_job else None,
        )
        print_results(prepared.sweep_dir, prepared.spec, manifest, console)
    console.print(f"sweep {manifest.sweep_id}: {manifest.status}  dir {prepared.sweep_dir}")
    if as_json:
        comparison = prepared.sweep_dir / "comparison" / "summary.json"
        print(json.dumps(_trials_json(prepared.sweep_dir, manifest) | {
            "counts": manifest.counts(),
            "comparison": str(comparison) if comparison.is_file() else None,
        }))
    raise typer.Exit(0 if manifest.status == "FINISHED" else 1)


def _start_background(
    sweep_file: Path,
    extra: list[str],
    address: str | None,
    only: str | None,
    max_concurrent: int | None,
    storage: str | None,
    executor: str | None,
    sweep_id: str,
    console: Console,
) -> tuple[int, Path]:
    command = [
        sys.executable,
        "-m",
        "biollm_platform.cli.sweep",
        "submit",
        str(sweep_file),
        *extra,
        "--sweep-id",
        sweep_id,
    ]
    for flag, value in (
        ("--address", address),
        ("--only", only),
        ("--max-concurrent", max_concurrent),
        ("--storage", storage),
        ("--executor", executor),
    ):
        if value is not None:
            command += [flag, str(value)]
    log = Path(f"/tmp/biollm-sweep-{sweep_id}.log")
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    console.print(f"sweep {sweep_id} started in the background (pid {process.pid}); log {log}")
    console.print(f"follow: biollm sweep status {sweep_id}")
    return process.pid, log


@app.command("list")
def list_sweeps(root: RootOption = DEFAULT_ROOT, as_json: JsonOption = False) -> None:
    """The sweeps under --root with their status and trial counts."""
    from biollm_platform.sweep.manifest import read_manifest

    sweeps = []
    for path in sorted(root.glob("*/manifest.json")) if root.is_dir() else []:
        manifest = read_manifest(path.parent)
        sweeps.append(
            _trials_json(path.parent.resolve(), manifest)
            | {"counts": manifest.counts(), "created_at": manifest.created_at}
        )
    if as_json:
        print(json.dumps(sweeps, indent=2))
        return
    console = Console(highlight=False)
    if not sweeps:
        console.print(f"no sweeps under {root}")
    for sweep in sweeps:
        counts = " ".join(f"{k.lower()} {v}" for k, v in sweep["counts"].items())
        where = f"job {sweep['job_id']}" if sweep["job_id"] else sweep["dir"]
        console.print(f"{sweep['sweep_id']}  {sweep['status']:<11} {counts}  {where}")


@app.command()
def status(sweep_id: str, root: RootOption = DEFAULT_ROOT, as_json: JsonOption = False) -> None:
    """A sweep's trials: state, step, output path (remote sweeps are asked through the job API)."""
    from biollm_platform.sweep import remote
    from biollm_platform.sweep.manifest import read_manifest
    from biollm_platform.sweep.report import summary_table

    sweep_dir = _find_sweep(sweep_id, root)
    manifest = read_manifest(sweep_dir)
    if manifest.job_id and remote.is_remote(manifest.address):
        _, manifest = remote.remote_status(manifest)
    data = _trials_json(sweep_dir, manifest)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console = Console(highlight=False)
    console.print(
        f"sweep {manifest.sweep_id}: {manifest.status}  dir {sweep_dir}"
        + (f"  job {manifest.job_id}" if manifest.job_id else "")
    )
    console.print(summary_table(sweep_dir, manifest))
    for trial in data["trials"]:
        if trial["error"]:
            console.print(f"{trial['trial_id']}: {trial['error']}", markup=False)


@app.command()
def resume(
    sweep_id: str,
    root: RootOption = DEFAULT_ROOT,
    address: Annotated[str | None, typer.Option(help="Ray to use (default: start a local one).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show Ray's own logs.")] = False,
) -> None:
    """Finish an interrupted sweep: done trials stay, interrupted and errored ones resume from checkpoints."""
    from biollm_platform.sweep import runner
    from biollm_platform.sweep.bytecode import ensure_bytecode
    from biollm_platform.sweep.report import print_results
    from biollm_platform.sweep.schema import load_sweep

    sweep_dir = _find_sweep(sweep_id, root)
    console = _console()
    ensure_bytecode(lambda line: console.print(line, markup=False))
    manifest = runner.resume(sweep_dir, address=address, verbose=verbose, console=console)
    print_results(sweep_dir, load_sweep(sweep_dir / "sweep.yaml"), manifest, console)
    console.print(f"sweep {manifest.sweep_id}: {manifest.status}  dir {sweep_dir}")
    raise typer.Exit(0 if manifest.status == "FINISHED" else 1)


@app.command()
def stop(sweep_id: str, root: RootOption = DEFAULT_ROOT) -> None:
    """Stop a running sweep (its local driver, or its Ray Job); `resume` continues it later."""
    from biollm_platform.sweep import remote
    from biollm_platform.sweep.manifest import read_manifest, write_manifest

    sweep_dir = _find_sweep(sweep_id, root)
    manifest = read_manifest(sweep_dir)
    if manifest.job_id and remote.is_remote(manifest.address):
        remote.stop_job(manifest)
    elif manifest.driver_pid:
        try:
            os.kill(manifest.driver_pid, signal.SIGINT)  # Tune stops its trials and saves state on SIGINT
        except ProcessLookupError:
            pass
    else:
        raise UserError(f"sweep {manifest.sweep_id} has no running driver (status {manifest.status})")
    manifest = read_manifest(sweep_dir)
    manifest.status = "STOPPED"
    write_manifest(sweep_dir, manifest)
    Console().print(
        f"sweep {manifest.sweep_id}: stop requested; `biollm sweep resume {manifest.sweep_id}` continues it"
    )


@app.command()
def schema(out: SchemaOut = None) -> None:
    """Print the JSON Schema of sweep files (shipped as schemas/sweep.schema.json)."""
    from biollm_platform.sweep.schema import sweep_json_schema

    emit_schema(sweep_json_schema(), out)


def main() -> None:
    """`python -m biollm_platform.cli.sweep ...` (how Ray Jobs and background drivers run a sweep): exactly
    `biollm sweep ...`, with its one-line errors and exit codes."""
    from biollm_platform.cli.app import app as root

    root(args=["sweep", *sys.argv[1:]], prog_name="biollm")


if __name__ == "__main__":
    main()
