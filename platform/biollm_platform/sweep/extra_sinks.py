"""Extra MetricsSinks for every trial of a sweep, named in ``BIOLLM_TRIAL_SINKS`` at submit or resume.

The variable holds specs separated by commas: ``module:factory`` or ``/path/to/file.py:factory``,
each optionally followed by ``?key=value&key=value``. In each Train worker (rank 0 and the others)
the factory is called as ``factory(trial_id=..., out_dir=Path, rank=int, **options)`` (option values
are strings) and returns an object with the engine's MetricsSink methods (``log_metrics``,
``log_checkpoint``, ``log_summary``, ``close``), or None to add nothing to that worker. The specs
travel in each trial's payload, so the factory's module must be importable where workers run (a file
path on a shared disk, or a package in the image or in ``py_modules``).

The test suite injects its faults this way (tests/biollm_platform/sweep/fault_sink.py): a worker that
dies or blocks at a step.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from biollm_core.errors import UserError

SINKS_ENV = "BIOLLM_TRIAL_SINKS"


def specs_from_env() -> list[str]:
    """The specs in BIOLLM_TRIAL_SINKS, each checked for form (not imported: that happens in workers)."""
    specs = [part.strip() for part in os.environ.get(SINKS_ENV, "").split(",") if part.strip()]
    for spec in specs:
        target = spec.split("?", 1)[0]
        if ":" not in target or not target.rpartition(":")[2].isidentifier():
            raise UserError(f"{SINKS_ENV}: {spec!r}: expected module:factory or /path/file.py:factory")
    return specs


def load_target(target: str, prefix: str = "biollm_extra_sink") -> Any:
    """``module:name`` or ``/path/file.py:name`` -> that object (a file is loaded as ``<prefix>_<stem>``)."""
    source, _, name = target.rpartition(":")
    if source.endswith(".py"):
        path = Path(source)
        module_spec = importlib.util.spec_from_file_location(f"{prefix}_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(source)
    return getattr(module, name)


def build_sinks(specs: list[str], *, trial_id: str, out_dir: Path, rank: int) -> list[Any]:
    """Call every spec's factory for this worker; the sinks they return."""
    sinks = []
    for spec in specs:
        target, _, query = spec.partition("?")
        factory = load_target(target)
        sink = factory(trial_id=trial_id, out_dir=out_dir, rank=rank, **dict(parse_qsl(query)))
        if sink is not None:
            sinks.append(sink)
    return sinks
