"""Checkpoints: one directory per checkpoint, written atomically, loadable with ``weights_only=True``.

Layout: ``checkpoints/step-00000200/{state.pt, meta.json}``. A directory appears under its final name
only once complete (written as ``.tmp-*`` and renamed), so a crash mid-write leaves no half checkpoint;
a failed write (a full disk) removes its temporary directory and leaves the earlier checkpoints as they
were. Resuming takes the newest checkpoint that reads back, and says which one it skipped and why.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch

from biollm_core.errors import UserError

log = logging.getLogger("biollm")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def save_checkpoint(root: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = root / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        with (tmp / "state.pt").open("wb") as handle:  # a Python file: a full disk raises OSError(ENOSPC)
            torch.save(state, handle)
        (tmp / "meta.json").write_text(json.dumps({"step": step}) + "\n")
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)  # the earlier checkpoints stay as they were
        cause = error if isinstance(error, OSError) else error.__context__  # torch wraps the file's OSError
        if isinstance(cause, OSError) and cause.errno is not None:
            raise OSError(cause.errno, os.strerror(cause.errno), str(final / "state.pt")) from error
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / "state.pt").exists())


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


class UnsafeCheckpointError(UserError):
    """A state.pt holding objects a BioLLM checkpoint never holds (a pickle that could run code)."""


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """Load ``path/state.pt`` with ``weights_only=True``; UserError (one line) when it cannot be used."""
    file = path / "state.pt"
    try:
        return torch.load(file, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" in str(error).lower():  # torch refused a global: never load it
            raise UnsafeCheckpointError(
                f"{file} is not a BioLLM checkpoint (it holds objects other than tensors and plain data) "
                "and will not be loaded"
            ) from None
        raise UserError(f"checkpoint {file} cannot be read: not a checkpoint file ({_first_line(error)})") from None
    except (OSError, RuntimeError, EOFError, ValueError) as error:  # truncated or corrupt
        raise UserError(f"checkpoint {file} cannot be read: {_first_line(error)}") from None


def load_latest_checkpoint(root: Path, device: torch.device) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint under ``root`` that reads back, with its state; None when there is none.

    A truncated or corrupt newer one is skipped with a warning naming it and the one used instead; a
    file that is not a BioLLM checkpoint stops the resume (it was replaced, not torn by a crash).
    """
    skipped: list[str] = []
    for path in reversed(list_checkpoints(root)):
        try:
            state = load_checkpoint(path, device)
        except UnsafeCheckpointError:
            raise
        except UserError as error:
            skipped.append(str(error))
            continue
        for reason in skipped:
            log.warning("%s; resuming from the newest readable checkpoint, %s", reason, path)
        return path, state
    if skipped:
        raise UserError(f"no readable checkpoint under {root}: {skipped[0]}")
    return None


def _first_line(error: BaseException) -> str:
    """The first line of an error, never torch's hint to load with weights_only=False."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return type(error).__name__ if "weights_only" in text else text
