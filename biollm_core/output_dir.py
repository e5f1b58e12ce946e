"""Where a run writes: checked before anything is created, so a refused run leaves no trace.

``check_out_dir`` has no side effects; the runner creates the directory only once the config, the data
and the model have been built. Each refusal is one line that names the path and what to do.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from biollm_core.errors import UserError

RUN_MARKERS = ("summary.json", "checkpoints")  # what makes a directory hold a run


def holds_run(out_dir: Path) -> bool:
    return out_dir.is_dir() and any((out_dir / marker).exists() for marker in RUN_MARKERS)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (``file/sub`` -> ``file``)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """Raise UserError unless a run can be written to ``out_dir`` (created later, with its parents)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output directory {out_dir} exists and is a file; choose another --out")
    existing = _nearest_existing(out_dir)
    if not existing.is_dir():
        raise UserError(f"output directory {out_dir}: {existing} is a file, not a directory; choose another --out")
    if _read_only(existing):
        raise UserError(f"output directory {out_dir}: {existing} is on a read-only file system; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"output directory {out_dir}: {existing} is not writable ({os.strerror(errno.EACCES)}); choose another --out")
    if not resume and holds_run(out_dir):
        raise UserError(
            f"output directory {out_dir} already holds a run; pass --resume to continue it, or --out DIR for a new one"
        )
