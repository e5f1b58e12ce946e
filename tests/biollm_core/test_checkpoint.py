"""Checkpoints: atomic directories, pruning, and safe loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from biollm_core.checkpoint import (
    UnsafeCheckpointError,
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
)
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


class _Exploit:
    """A pickle that would run a shell command on load (what a tampered checkpoint holds)."""

    def __reduce__(self):  # noqa: ANN204
        import os

        return (os.system, ("touch /tmp/biollm-pwned",))


def test_a_malicious_pickle_is_refused_in_one_line_without_the_unsafe_hint(tmp_path: Path) -> None:
    import pickle

    path = save_checkpoint(tmp_path, 1, state(1), keep_last=1)
    (path / "state.pt").write_bytes(pickle.dumps({"weights": _Exploit()}))
    torch.save({"weights": _Exploit()}, tmp_path / "zip.pt")  # the same, in torch's own zip format
    for file in (path / "state.pt", tmp_path / "zip.pt"):
        if file.name == "zip.pt":
            (path / "state.pt").write_bytes(file.read_bytes())
        with pytest.raises(UnsafeCheckpointError) as refused:
            load_latest_checkpoint(tmp_path, torch.device("cpu"))  # no fallback past a tampered file
        message = str(refused.value)
        assert message == (
            f"{path / 'state.pt'} is not a BioLLM checkpoint (it holds objects other than tensors and plain data) "
            "and will not be loaded"
        )
        assert "weights_only" not in message and "\n" not in message
    assert not Path("/tmp/biollm-pwned").exists()


def test_resume_falls_back_to_the_newest_readable_checkpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for step in (10, 20):
        save_checkpoint(tmp_path, step, state(step), keep_last=3)
    newest = tmp_path / "step-00000020" / "state.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated: the machine died while it was copied
    with caplog.at_level("WARNING", logger="biollm"):
        path, loaded = load_latest_checkpoint(tmp_path, torch.device("cpu"))
    assert path == tmp_path / "step-00000010" and loaded["step"] == 10
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"checkpoint {newest} cannot be read" in warning and f"resuming from the newest readable checkpoint, {path}" in warning
    (tmp_path / "step-00000010" / "state.pt").write_bytes(b"")
    with pytest.raises(UserError, match="no readable checkpoint under"):
        load_latest_checkpoint(tmp_path, torch.device("cpu"))
    assert load_latest_checkpoint(tmp_path / "none", torch.device("cpu")) is None


def test_a_full_disk_names_the_checkpoint_and_keeps_the_earlier_ones(tmp_path: Path) -> None:
    """The write fails like ENOSPC does (here /dev/full as the state file's destination)."""
    import errno
    import os

    save_checkpoint(tmp_path, 10, state(10), keep_last=2)
    before = (tmp_path / "step-00000010" / "state.pt").read_bytes()
    real_open = Path.open

    def full_disk(self: Path, mode: str = "r", *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        target = Path("/dev/full") if self.name == "state.pt" and "w" in mode else self
        return real_open(target, mode, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "open", full_disk)
        with pytest.raises(OSError) as failed:
            save_checkpoint(tmp_path, 20, state(20), keep_last=2)
    assert failed.value.errno == errno.ENOSPC and failed.value.filename == str(tmp_path / "step-00000020" / "state.pt")
    assert os.listdir(tmp_path) == ["step-00000010"]  # no temporary directory left, the earlier one intact
    assert (tmp_path / "step-00000010" / "state.pt").read_bytes() == before
