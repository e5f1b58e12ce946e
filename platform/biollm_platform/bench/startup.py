"""How long the CLI takes to answer: quick commands timed as a user runs them, in fresh processes.

Each command runs ``repeats`` times as a subprocess (the installed ``biollm`` console script); the
median wall time is reported, with its ratio against ``python -c pass`` timed the same way in the same
call, so a slower or busier machine moves both. ``uv run`` adds uv's own start (its lock and
environment check) on top: measured as ``uv run biollm --help`` when asked and uv is on PATH.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biollm_core.errors import UserError

TARGETS_S = {"help": 0.8, "sweep_list": 1.5}  # issue 16: `biollm --help` and `biollm sweep list`, median of 5


def biollm_command() -> list[str]:
    """The installed console script beside this interpreter, else the same entry point through python."""
    script = Path(sys.executable).parent / "biollm"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from biollm_platform.cli.app import main; main()"]


def median_wall_s(command: Sequence[str], repeats: int, cwd: Path | None = None) -> tuple[float, list[float]]:
    """Median wall time of ``command`` over ``repeats`` runs (stdout/stderr discarded; it must exit 0)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"`{' '.join(command)}` exited with {done.returncode}: {last}")
    return statistics.median(times), times


def bench_startup(repeats: int = 5, *, with_uv: bool = False, cwd: Path | None = None) -> dict[str, Any]:
    """Median wall times of `python -c pass`, `biollm --help`, `biollm sweep list` (and `uv run biollm --help`)."""
    biollm = biollm_command()
    commands: dict[str, list[str]] = {
        "python_pass": [sys.executable, "-c", "pass"],
        "help": [*biollm, "--help"],
        "sweep_list": [*biollm, "sweep", "list"],
        "version": [*biollm, "--version"],
    }
    uv = shutil.which("uv")
    project = Path(__file__).resolve().parents[3]  # the checkout holding pyproject.toml (uv's project)
    if with_uv:
        if uv is None or not (project / "pyproject.toml").is_file():
            raise UserError("--uv: needs uv on PATH and biollm installed from a checkout (uv's project)")
        commands["uv_run_help"] = [uv, "run", "--project", str(project), "biollm", "--help"]
    result: dict[str, Any] = {"repeats": repeats, "command": " ".join(biollm), "times_s": {}}
    for name, command in commands.items():
        median, times = median_wall_s(command, repeats, cwd)
        result[f"{name}_s"] = median
        result["times_s"][name] = times
    baseline = result["python_pass_s"]
    for name in commands:
        if name != "python_pass":
            result[f"{name}_ratio"] = result[f"{name}_s"] / baseline
    if "uv_run_help_s" in result:
        result["uv_run_overhead_s"] = result["uv_run_help_s"] - result["help_s"]
    result["targets_s"] = dict(TARGETS_S)
    result["targets_met"] = {name: result[f"{name}_s"] <= limit for name, limit in TARGETS_S.items()}
    return result
