"""Device choice and numeric settings (AMP, TF32, matmul precision, compile, determinism).

Every setting is honoured where the device supports it and otherwise ignored with a logged note.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from biollm_core.errors import UserError

log = logging.getLogger("biollm")


def pick_device(requested: str) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu. An explicit device that is missing is a user error."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device: '{requested}' was asked for but CUDA is not available here (use device=auto or device=cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device: '{requested}' was asked for but MPS is not available here (use device=auto or device=cpu)")
    return device


@dataclass
class Precision:
    device: torch.device
    amp_dtype: torch.dtype | None = None  # None = AMP off
    notes: list[str] = field(default_factory=list)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A real scaler for fp16 on CUDA; a disabled (pass-through) one otherwise."""
        enabled = self.amp_dtype == torch.float16 and self.device.type == "cuda"
        return torch.amp.GradScaler(self.device.type if enabled else "cpu", enabled=enabled)


def configure_precision(
    device: torch.device,
    *,
    amp_enabled: bool,
    amp_dtype: str,
    allow_tf32: bool,
    matmul_precision: str,
    deterministic: bool,
    cudnn_benchmark: bool,
) -> Precision:
    precision = Precision(device=device)
    note = precision.notes.append
    torch.set_float32_matmul_precision(matmul_precision)
    if amp_enabled:
        if device.type == "cuda":
            if amp_dtype == "bf16" and not torch.cuda.is_bf16_supported():
                note("train.amp_dtype=bf16 is not supported by this GPU: AMP falls back to fp16 with a grad scaler")
                amp_dtype = "fp16"
            precision.amp_dtype = torch.bfloat16 if amp_dtype == "bf16" else torch.float16
        else:
            note(f"train.amp_enabled is ignored on {device.type}: AMP runs on CUDA only")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        torch.backends.cudnn.allow_tf32 = allow_tf32
        torch.backends.cudnn.benchmark = cudnn_benchmark and not deterministic
        torch.backends.cudnn.deterministic = deterministic
    elif allow_tf32:
        note(f"train.allow_tf32 is ignored on {device.type}: TF32 exists on CUDA only")
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        # A debugging aid that use_deterministic_algorithms turns on: every new tensor is first filled
        # with NaN. Results do not depend on it (nothing reads memory before writing it), and at the toy
        # sizes the fills were ~12% of the wake step's ops.
        torch.utils.deterministic.fill_uninitialized_memory = False
    for line in precision.notes:
        log.info("note: %s", line)
    return precision


def maybe_compile(fn: Callable, enabled: bool, device: torch.device, notes: list[str]) -> Callable:
    """torch.compile ``fn`` where supported (CUDA and CPU with a C++ compiler); a note elsewhere. Dynamic
    shapes: the CLS learner calls the neocortex on many row counts, and static ones compiled a graph per
    count until dynamo's recompile limit, then ran eager."""
    if not enabled:
        return fn
    if device.type == "mps":
        notes.append("train.compile is ignored on mps")
        log.info("note: train.compile is ignored on mps")
        return fn
    return torch.compile(fn, dynamic=None)
