"""The quick commands import none of the heavy packages they do not use (issue 16: start-up time).

Each command runs in a fresh interpreter, as a user starts it; an exit hook prints which heavy packages
ended up in ``sys.modules``. A module-level import of torch, Ray, W&B, transformers, datasets or
matplotlib in a CLI module (or in anything it imports) makes one of these fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "ray", "transformers", "datasets", "wandb", "matplotlib", "tensorboardX", "tokenizers")

_PROBE = """
import atexit, json, sys
HEAVY = {heavy!r}
atexit.register(lambda: print("IMPORTED " + json.dumps([m for m in HEAVY if m in sys.modules]), file=sys.__stderr__))
from biollm_platform.cli.app import main
sys.argv = ["biollm", *sys.argv[1:]]
main()
"""


def imported_heavy(args: list[str], cwd: Path) -> tuple[int, set[str], str]:
    """Run `biollm ARGS` in a fresh interpreter; (exit code, heavy packages imported, stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("IMPORTED ")]
    assert lines, done.stderr
    return done.returncode, set(json.loads(lines[-1].removeprefix("IMPORTED "))), done.stderr


def _write_sweep(root: Path) -> str:
    """A finished two-trial sweep on disk (manifest, summaries, metrics), as `sweep submit` leaves one."""
    sweep_id = "toy-20260101-000000-abcd"
    sweep_dir = root / sweep_id
    trials = []
    for method, accuracy in (("cls", 0.9), ("nosleep", 0.5)):
        out = sweep_dir / f"{method}-seed7"
        out.mkdir(parents=True)
        (out / "summary.json").write_text(json.dumps({"final_seen_acc_avg": accuracy, "method": method, "seed": 7}))
        (out / "metrics.jsonl").write_text(json.dumps({"step": 1, "seen_acc": accuracy, "old_task_loss": 1.0}) + "\n")
        trials.append({"trial_id": out.name, "method": method, "seed": 7, "axes": {"seed": 7, "method": method},
                       "state": "TERMINATED", "out_dir": out.name})
    manifest = {"sweep_id": sweep_id, "name": "toy", "status": "FINISHED", "trials": trials}
    (sweep_dir / "manifest.json").write_text(json.dumps(manifest))
    return sweep_id


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("startup") / "outputs" / "sweeps"
    return root, _write_sweep(root)


NONE: set[str] = set()


@pytest.mark.parametrize(
    ("args", "allowed", "code"),
    [
        (["--help"], NONE, 0),
        (["--version"], NONE, 0),
        (["config", "--help"], NONE, 0),
        (["sweep", "submit", "--help"], NONE, 0),
        (["train", "--help"], NONE, 0),
        (["results", "aggregate", "--help"], NONE, 0),
        (["data", "make-tiny-lm", "--help"], NONE, 0),
        (["bench", "engine", "--help"], NONE, 0),
        (["config", "show", "train=cpu", "mode=nosleep"], NONE, 0),
        (["config", "presets"], NONE, 0),
        (["config", "schema"], NONE, 0),
        (["sweep", "list"], NONE, 0),
        (["sweep", "list", "--json"], NONE, 0),
        (["sweep", "status", "SWEEP"], NONE, 0),
        (["sweep", "status", "SWEEP", "--json"], NONE, 0),
        (["sweep", "stop", "SWEEP"], NONE, 2),  # no running driver: one line, exit 2
        (["sweep", "schema"], NONE, 0),
        (["results", "aggregate", "SWEEP", "--no-plots"], NONE, 0),
        (["results", "aggregate", "SWEEP"], {"matplotlib"}, 0),  # it draws: matplotlib, nothing else
        (["doctor", "--json"], {"torch"}, 0),  # it reports torch's devices: torch, nothing else
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_quick_commands_import_only_what_they_use(
    args: list[str], allowed: set[str], code: int, sweeps: tuple[Path, str]
) -> None:
    root, sweep_id = sweeps
    args = [sweep_id if arg == "SWEEP" else arg for arg in args]
    exit_code, imported, stderr = imported_heavy(args, cwd=root.parent.parent)
    assert exit_code == code, stderr
    assert imported <= allowed, f"`biollm {' '.join(args)}` imported {sorted(imported - allowed)}"
    if allowed:  # the command did its work (a probe that imports nothing at all proves nothing)
        assert imported == allowed
