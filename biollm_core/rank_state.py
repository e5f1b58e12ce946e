"""Checkpoints of a data-parallel run: rank 0 keeps the run's state, each other rank only its own part.

Every rank holds the same model, optimizers, counters and generators (the gradients are summed, the
decisions shared); what differs is the replay payload each rank holds (``ReplayBuffer.state_dict``
marks it ``RANK_LOCAL``). Rank 0 writes the whole state to ``checkpoints/step-N`` as a single process
does; rank r > 0 writes only its rank-local parts to ``checkpoints/rank-r/step-N``, and nothing else
anywhere. Rank r's parts are written first, then (after a barrier) rank 0's checkpoint, which is what
makes step N a checkpoint; a rank keeps one shard more than ``checkpoint_keep_last``, so the shard of
rank 0's newest readable checkpoint is always there. On resume rank 0 picks its newest readable
checkpoint, every rank takes that step, reads rank 0's state and puts its own parts in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from biollm_core.checkpoint import checkpoint_name, load_checkpoint, load_latest_checkpoint, save_checkpoint
from biollm_core.distributed import Distributed
from biollm_core.errors import UserError

RANK_LOCAL = "rank_local"  # a state_dict holding this key (True) is this rank's own (a replay shard)


def rank_dir(checkpoints: Path, rank: int) -> Path:
    return checkpoints / f"rank-{rank}"


def rank_local_parts(state: Any, path: str = "") -> dict[str, Any]:
    """{"a/b": subtree}: every rank-local subtree of a nested state dict, by its key path."""
    if not isinstance(state, dict):
        return {}
    if state.get(RANK_LOCAL) is True:
        return {path: state}
    parts: dict[str, Any] = {}
    for key, value in state.items():
        parts.update(rank_local_parts(value, f"{path}/{key}" if path else str(key)))
    return parts


def with_parts(state: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    """``state`` with the subtrees at ``parts``' key paths replaced (in place) by ``parts``' own."""
    for path, subtree in parts.items():
        *parents, last = path.split("/")
        node = state
        for key in parents:
            node = node[key]
        node[last] = subtree
    return state


def save_run_checkpoint(checkpoints: Path, step: int, state: dict[str, Any], keep_last: int, dp: Distributed) -> Path:
    """Every rank's part of the checkpoint at ``step``; returns rank 0's directory (which ranks log)."""
    if not dp.is_main and (parts := rank_local_parts(state)):  # a method without replay: nothing of its own
        save_checkpoint(rank_dir(checkpoints, dp.rank), step, parts, keep_last + 1)
    dp.barrier()  # every shard is on disk before rank 0's checkpoint makes the step resumable
    if dp.is_main:
        return save_checkpoint(checkpoints, step, state, keep_last)
    return checkpoints / checkpoint_name(step)


def load_run_checkpoint(checkpoints: Path, device: torch.device, dp: Distributed) -> tuple[Path, dict[str, Any]] | None:
    """The state to resume from on this rank (None: start afresh), the same step on every rank."""
    latest = load_latest_checkpoint(checkpoints, device) if dp.is_main else None
    step = int(dp.agree(-1.0 if latest is None else float(_step_of(latest[0]))))
    if step < 0 or dp.is_main:
        return latest
    found = checkpoints / checkpoint_name(step)
    state = load_checkpoint(found, device)
    if not rank_local_parts(state):
        return found, state
    own = rank_dir(checkpoints, dp.rank) / checkpoint_name(step)
    if not (own / "state.pt").is_file():
        raise UserError(f"rank {dp.rank} cannot resume from {found}: its replay shard {own} is missing")
    return found, with_parts(state, load_checkpoint(own, device))


def _step_of(path: Path) -> int:
    return int(path.name.removeprefix("step-"))
