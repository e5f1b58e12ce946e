"""Checkpoints: atomic directories, pruning, and safe loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from biollm_core.checkpoint import checkpoint_name, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from biollm_core.errors import UserError


def state(step: int) -> dict:
    return {"weights": torch.full((2, 2), float(step)), "step": step, "rng": torch.Generator().get_state(),
            "nested": {"names": ["a", "b"], "value": 0.5}}


def test_save_list_latest_and_prune(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    assert list_checkpoints(root) == [] and latest_checkpoint(root) is None
    for step in (100, 200, 300):
        path = save_checkpoint(root, step, state(step), keep_last=2)
        assert path == root / checkpoint_name(step)
        assert json.loads((path / "meta.json").read_text()) == {"step": step}
    assert [p.name for p in list_checkpoints(root)] == ["step-00000200", "step-00000300"]
    assert latest_checkpoint(root) == root / "step-00000300"
    assert not (root / "step-00000100").exists()
    assert not any(p.name.startswith(".tmp") for p in root.iterdir())


def test_load_with_weights_only(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 7, state(7), keep_last=1)
    loaded = load_checkpoint(path, torch.device("cpu"))
    assert torch.equal(loaded["weights"], torch.full((2, 2), 7.0))
    assert loaded["step"] == 7 and loaded["nested"] == {"names": ["a", "b"], "value": 0.5}
    assert torch.equal(loaded["rng"], torch.Generator().get_state())
    torch.load(path / "state.pt", weights_only=True)  # what a careful reader would do


def test_a_half_written_checkpoint_is_ignored(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 10, state(10), keep_last=3)
    half = tmp_path / ".tmp-step-00000020-999"
    half.mkdir()
    torch.save(state(20), half / "state.pt")  # crashed before meta.json and the rename
    no_state = tmp_path / "step-00000030"
    no_state.mkdir()  # a directory without its state file is not a checkpoint either
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000010"]
    assert latest_checkpoint(tmp_path) == tmp_path / "step-00000010"


def test_saving_the_same_step_again_replaces_it(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 5, state(5), keep_last=2)
    save_checkpoint(tmp_path, 5, {"weights": torch.zeros(1)}, keep_last=2)
    assert len(list_checkpoints(tmp_path)) == 1
    assert torch.equal(load_checkpoint(tmp_path / "step-00000005", torch.device("cpu"))["weights"], torch.zeros(1))


def test_a_corrupt_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 1, state(1), keep_last=1)
    (path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="state.pt"):
        load_checkpoint(path, torch.device("cpu"))
