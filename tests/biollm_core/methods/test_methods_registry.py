"""The registry: every method has a config section, a module with a builder, and a working protocol."""

from __future__ import annotations

import pytest
import torch

from biollm_core import builders
from biollm_core.config.loader import load_config
from biollm_core.methods import METHOD_NAMES, MethodContext, build_method
from biollm_core.methods.protocol import ContinualMethod
from biollm_core.methods.registry import INFO, SECTIONS, implementation


def test_every_method_has_a_section_and_an_implementation() -> None:
    assert set(METHOD_NAMES) == {"cls", "nosleep", "finetune", "ewc", "lwf", "er", "derpp", "joint"}
    assert set(SECTIONS) == set(INFO) == set(METHOD_NAMES)
    for name in METHOD_NAMES:
        assert callable(implementation(name).build)
    with pytest.raises(KeyError, match="unknown method"):
        implementation("sleep")


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_the_builder_makes_a_continual_method(name: str) -> None:
    config = load_config(["train=cpu", f"method={name}", "benchmark.heldout_size=8", "replay.capacity=16"])
    bench = builders.build_benchmark(config)
    device = torch.device("cpu")
    method = build_method(config, MethodContext(bench, device, builders.build_precision(config, device), 16, False))
    assert isinstance(method, ContinualMethod)
    neocortex, hippocampus = method.answering_models()
    assert (hippocampus is not None) == INFO[name].has_hippocampus
    assert method.summary().gradient_steps == 0
