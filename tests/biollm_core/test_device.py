"""Device choice and numeric settings on the CPU (the GPU paths are exercised where a GPU exists)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from biollm_core.device import Precision, configure_precision, maybe_compile, pick_device
from biollm_core.errors import UserError


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_missing_cuda_is_a_user_error() -> None:
    with pytest.raises(UserError, match="device"):
        pick_device("cuda")


def test_amp_on_cpu_is_a_note_and_a_pass_through() -> None:
    precision = configure_precision(
        torch.device("cpu"), amp_enabled=True, amp_dtype="bf16", allow_tf32=True, matmul_precision="highest",
        deterministic=False, cudnn_benchmark=False,
    )
    assert precision.amp_dtype is None
    assert any("amp_enabled" in note for note in precision.notes)
    assert any("allow_tf32" in note for note in precision.notes)
    assert isinstance(precision.autocast(), contextlib.nullcontext)
    assert not precision.grad_scaler().is_enabled()


def test_disabled_scaler_passes_the_loss_through() -> None:
    scaler = Precision(device=torch.device("cpu")).grad_scaler()
    loss = torch.tensor(3.0)
    assert scaler.scale(loss) is loss or scaler.scale(loss).item() == 3.0


def test_maybe_compile_off_returns_the_function() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x

    assert maybe_compile(fn, False, torch.device("cpu"), []) is fn


def test_maybe_compile_follows_changing_row_counts_without_recompiling_each() -> None:
    """The CLS learner calls the neocortex's halves on many row counts (the wake pass with its replayed
    episodes, the gate's decode of the stale ones, sleep, evaluation). Static shapes compiled one graph
    per count until dynamo's recompile limit (8) and ran eager after it; dynamic shapes take two graphs."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    fn = maybe_compile(lambda x: torch.sin(x) * 2 + 1, True, torch.device("cpu"), [])
    for rows in range(2, 14):
        x = torch.randn(rows, 3)
        assert torch.allclose(fn(x), torch.sin(x) * 2 + 1)
    assert counters["stats"]["unique_graphs"] <= 2
    torch._dynamo.reset()


def test_deterministic_mode_skips_the_nan_fill_of_new_tensors() -> None:
    """repro.deterministic turns on deterministic algorithms but not the debugging fill of new memory."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    try:
        configure_precision(
            torch.device("cpu"), amp_enabled=False, amp_dtype="bf16", allow_tf32=False, matmul_precision="highest",
            deterministic=True, cudnn_benchmark=False,
        )
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.utils.deterministic.fill_uninitialized_memory = before[2]
