"""The sharding design's memory arithmetic (README, "FSDP / ZeRO on paper"). The Qwen2.5-0.5B counts it is
applied to are those tests/biollm_core/models/test_hf_causal_lm.py measures (494.0M, 195.8M trained)."""

from __future__ import annotations

import pytest

from biollm_platform.bench.sharding import ModelCounts, bytes_per_rank


def test_memory_per_rank_by_hand() -> None:
    counts = ModelCounts("toy", total=1000, trained=100, largest_unit=50)
    assert bytes_per_rank(counts, 4, "ddp") == 4 * 1000 + 20 * 100  # weights + grad, moments, Fisher, anchor
    assert bytes_per_rank(counts, 4, "zero2") == 4000 + 2000 // 4
    assert bytes_per_rank(counts, 4, "fsdp") == 6000 // 4 + 4 * 50  # everything sharded + one gathered unit
    assert bytes_per_rank(counts, 1, "fsdp") == bytes_per_rank(counts, 1, "ddp") == 6000
    with pytest.raises(ValueError, match="unknown strategy"):
        bytes_per_rank(counts, 2, "zero9")

