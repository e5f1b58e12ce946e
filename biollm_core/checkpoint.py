"""Checkpoints: one directory per checkpoint, written atomically, loadable with ``weights_only=True``.

Layout: ``checkpoints/step-00000200/{state.pt, meta.json}``. A directory appears under its final name
only once complete (written as ``.tmp-*`` and renamed), so a crash mid-write leaves no half checkpoint.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch

from biollm_core.errors import UserError


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def save_checkpoint(root: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = root / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps({"step": step}) + "\n")
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


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        return torch.load(path / "state.pt", map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:  # truncated, corrupt or unsafe
        raise UserError(f"checkpoint {path / 'state.pt'} cannot be read: {error}") from error
