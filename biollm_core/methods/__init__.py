"""Continual-learning methods, one file each, behind the ``ContinualMethod`` protocol (``protocol.py``).

``build_method`` is the one builder the runner and ``biollm bench engine`` share: it imports the
chosen method's module (``registry.implementation``) and calls its ``build(config, context)``, which
maps the config to the method's flat keyword arguments. Importing this package imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from biollm_core.distributed import SINGLE, Distributed
from biollm_core.methods.registry import INFO, METHOD_NAMES, implementation

if TYPE_CHECKING:
    import torch

    from biollm_core.config.schema import RunConfig
    from biollm_core.device import Precision
    from biollm_core.methods.protocol import ContinualMethod
    from biollm_core.protocols import ContinualBenchmark

__all__ = ["INFO", "METHOD_NAMES", "MethodContext", "build_method"]


@dataclass(frozen=True)
class MethodContext:
    """What every method is built against: the stream (for joint's i.i.d. batches and EWC's Fisher
    data), the device, the precision policy and the data-parallel group."""

    benchmark: ContinualBenchmark
    device: torch.device
    precision: Precision
    seq_len: int  # L: label positions of every batch and held-out set (T for tokens, output heads for features)
    with_attention_mask: bool  # the benchmark pads (instruction data) and batches carry a mask
    distributed: Distributed = SINGLE  # data-parallel rank and world size (observe gets this rank's shard)


def build_method(config: RunConfig, context: MethodContext) -> ContinualMethod:
    """The method ``config.method.name`` names, built from the config (its neocortex on ``context.device``)."""
    module = implementation(config.method.name)
    return module.build(config, context)
