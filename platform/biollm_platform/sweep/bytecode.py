"""Compile the environment's bytecode once before a local sweep starts Ray's many fresh processes.

Where ``PYTHONDONTWRITEBYTECODE`` is set (containers, CI, this project's machines) Python never writes
``.pyc`` files, so every Ray process of a sweep (Tune trial, Train controller, worker, helper actors)
compiles Ray, torch and pandas from source again: `toy_ablation` took 205 s instead of 83 s. Installs
that compile at install time (``--compile-bytecode`` in the image) already have them, CI unsets the
variable (``.ci/run``); a fresh ``uv run`` from a clone where it is set has none. ``ensure_bytecode``
compiles the interpreter's site-packages once with ``compileall`` (which writes ``.pyc`` files whatever that variable
says) and leaves a marker naming what it compiled, so later sweeps only read the marker. When Python may
write bytecode itself, or site-packages is not writable, it does nothing.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

MARKER = ".biollm-bytecode"


def _site_packages() -> list[Path]:
    paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    return sorted(Path(p) for p in paths if Path(p).is_dir())


def fingerprint(site_packages: Path) -> str:
    """What is installed (every *.dist-info name) and for which interpreter: a new install changes it."""
    names = sorted(p.name for p in site_packages.iterdir() if p.name.endswith(".dist-info"))
    text = "\n".join([sys.implementation.cache_tag or "", *names])
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_bytecode(
    log: Callable[[str], None] = lambda line: None, *, force: bool = False, roots: list[Path] | None = None
) -> float | None:
    """Compile site-packages (or ``roots``) unless done for this install; seconds it took, None if skipped."""
    if not (force or sys.dont_write_bytecode):
        return None  # Python writes .pyc on first import: the sweep's first processes leave them behind
    todo = []
    for root in _site_packages() if roots is None else roots:
        marker = root / MARKER
        if marker.is_file() and marker.read_text().strip() == fingerprint(root):
            continue
        if not os.access(root, os.W_OK):
            continue  # a system install: nothing we may write
        todo.append(root)
    if not todo:
        return None
    log(f"compiling the bytecode of {', '.join(map(str, todo))} once (PYTHONDONTWRITEBYTECODE is set; "
        "Ray's processes would otherwise compile it again each)")
    started = time.perf_counter()
    for root in todo:
        compileall.compile_dir(root, quiet=1, workers=os.cpu_count() or 1)
        try:
            (root / MARKER).write_text(fingerprint(root) + "\n")
        except OSError:
            pass
    elapsed = time.perf_counter() - started
    log(f"bytecode compiled in {elapsed:.1f} s")
    return elapsed
