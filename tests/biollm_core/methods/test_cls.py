"""The CLS learner's loop around wake and sleep: the cached gate targets and the replay cadence."""

from __future__ import annotations

import torch

from biollm_core import builders
from biollm_core.config.loader import load_config
from biollm_core.device import Precision
from biollm_core.gate_supervision import gate_targets
from biollm_core.methods import MethodContext
from biollm_core.methods.cls import ClsLearner, build


def learner(*overrides: str) -> tuple[ClsLearner, object]:
    config = load_config(["train=cpu", "replay.capacity=256", "seed=3", *overrides])
    bench = builders.build_benchmark(config)
    config = builders.fit_to_benchmark(config, bench)
    cpu = torch.device("cpu")
    return build(config, MethodContext(bench, cpu, Precision(device=cpu), bench.heldout(0).labels.shape[1], False)), bench


@torch.no_grad()
def fresh_targets(cls: ClsLearner) -> torch.Tensor:
    """(N,) the gate targets of every stored episode, decoded by the neocortex as it is now."""
    t, n = cls.replay.tensors, len(cls.replay)
    neocortex = cls.neocortex
    return gate_targets(neocortex.decode(neocortex.encode(t["input_ids"][:n].long())), t["labels"][:n].long())


def test_a_sleep_invalidates_the_cached_gate_targets_and_the_wake_step_recomputes_them() -> None:
    cls, bench = learner()
    assert cls.replay.caches_base_targets  # the preset's wake path: gate supervised by replayed episodes
    for index in range(12):
        cls.observe(bench.train_batch(index, 32), index)
    cached = cls.replay.tensors["base_targets"][: len(cls.replay)].clone()
    assert not cached.isnan().any()  # every stored batch came with its targets
    torch.testing.assert_close(cached, fresh_targets(cls))
    cls.sleep(60, 12)
    assert cls.replay.tensors["base_targets"].isnan().all()
    assert not torch.equal(cached, fresh_targets(cls))  # the neocortex moved: the old values would be wrong
    for index in range(12, 20):
        cls.observe(bench.train_batch(index, 32), index)
    after = cls.replay.tensors["base_targets"][: len(cls.replay)]
    known = ~after.isnan()
    assert 8 * 32 > known.sum() > 0  # some recomputed (the new batches, replayed episodes), not all
    torch.testing.assert_close(after[known], fresh_targets(cls)[known])


def test_no_cache_where_the_neocortex_learns_awake_or_the_gate_is_not_supervised() -> None:
    assert not learner("consolidation.wake_base_lr_scale=0.1")[0].replay.caches_base_targets
    assert not learner("wake.gate_weight=0")[0].replay.caches_base_targets
    assert not learner("experts.gate=false")[0].replay.caches_base_targets


def test_harm_every_replays_in_every_kth_wake_step_only() -> None:
    counts = {}
    for every in (1, 3):
        cls, bench = learner(f"wake.harm_every={every}")
        for index in range(7):
            cls.observe(bench.train_batch(index, 32), index)
        counts[every] = (cls.counters.samples_processed - 7 * 32) / cls.settings.harm_batch_size  # replaying steps
    assert counts == {1: 6, 3: 2}  # steps 1-6 | steps 3, 6 (step 0 has an empty buffer)
