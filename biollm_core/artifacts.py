"""Run artifacts (spec §9): atomic JSON files, the JSONL metrics sink and the run metadata."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biollm_core.errors import UserError

if TYPE_CHECKING:
    import torch


def json_safe(value: Any) -> Any:
    """Non-finite floats become null (strict JSON); tensors become Python numbers."""
    torch = sys.modules.get("torch")  # a tensor means torch is loaded; JSON writers alone never load it
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file, fsync and a rename: a reader never sees half a file, and after
    a crash (or power loss) the file holds either the old or the new contents. The one helper for every
    JSON file BioLLM writes (run artifacts, sweep manifests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(json_safe(data), handle, indent=2, sort_keys=True, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())  # the data reaches the disk before the rename makes it visible
        os.replace(tmp, path)
    except OSError as error:  # a full disk: the old file stays, the error names it
        Path(tmp).unlink(missing_ok=True)
        raise _naming(error, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Persist a rename: the directory entry is data of the directory (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _naming(error: OSError, path: Path) -> OSError:
    """The same OSError with the file it was about (a write on an open handle names none)."""
    if error.filename is not None or error.errno is None:
        return error
    return OSError(error.errno, error.strerror or os.strerror(error.errno), str(path))


class JsonlSink:
    """Implements ``MetricsSink``: metrics.jsonl, one JSON object a line, flushed after every write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("a", encoding="utf-8")

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        try:
            self._handle.write(json.dumps(json_safe({"step": step, **metrics}), allow_nan=False) + "\n")
            self._handle.flush()
        except OSError as error:
            raise _naming(error, self.path) from None

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        pass

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        try:
            self._handle.close()
        except OSError as error:
            raise _naming(error, self.path) from None


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only the records with ``step <= last_step`` (used when resuming from a checkpoint).

    A torn last line (a crash mid-write: no newline at the end) is dropped. Any other line that is not a
    JSON record stops the resume with its file:line, before anything is changed.
    """
    if not path.exists():
        return
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not a metrics file (byte {error.start} is not UTF-8); move it away to resume") from None
    lines = text.splitlines()
    kept = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = record["step"]
            if not isinstance(step, int):
                raise TypeError(step)
        except (ValueError, KeyError, TypeError):
            if number == len(lines) and not text.endswith("\n"):
                continue  # torn by a crash while it was written; past the checkpoint anyway
            raise UserError(
                f"{path}:{number}: not a metrics record (garbled line); fix or delete that line to resume"
            ) from None
        if step <= last_step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _lockfile_hash(root: Path) -> str | None:
    lock = root / "uv.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else None


def run_metadata(device: torch.device, notes: list[str]) -> dict[str, Any]:
    import torch

    root = Path(__file__).resolve().parent.parent
    versions = {}
    for package in ("torch", "transformers", "ray", "wandb", "numpy", "pydantic", "biollm"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "git_commit": _git_commit(root),
        "lockfile_sha256": _lockfile_hash(root),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "notes": notes,
    }
