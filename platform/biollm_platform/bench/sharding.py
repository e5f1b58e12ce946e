"""Memory per rank of the neocortex's training state under DDP, ZeRO-2 and FSDP (the README's design).

``python -m biollm_platform.bench.sharding`` prints the table for Qwen2.5-0.5B and Qwen2.5-7B shapes
(built on the meta device: no weights, no hub) with ``model.consolidate_top_blocks=4``, at 1, 2, 4 and 8
ranks. Per parameter, in fp32: the weight (4 B, every parameter); for each consolidated (trained)
parameter its gradient (4 B), AdamW's two moments (8 B), the online Fisher (4 B) and the EWC anchor
(4 B). Activations, the hippocampus (under 1 MB here) and the replay buffer (sharded by episode
already) are left out.

- ``ddp``: every rank holds everything (what the engine does now).
- ``zero2``: gradient, moments, Fisher and anchor sharded over W; weights replicated.
- ``fsdp``: all of it sharded, plus one unit's weights gathered at a time (the largest decoder layer
  or the LM head, whichever is bigger).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

WEIGHT_BYTES = 4
TRAINED_STATE_BYTES = 4 + 8 + 4 + 4  # gradient, AdamW moments, Fisher, anchor
STRATEGIES = ("ddp", "zero2", "fsdp")


@dataclass(frozen=True)
class ModelCounts:
    name: str
    total: int  # every parameter
    trained: int  # the consolidated ones (top blocks + final norm + LM head)
    largest_unit: int  # the largest FSDP unit: one decoder layer, or the LM head


def bytes_per_rank(counts: ModelCounts, world_size: int, strategy: str) -> int:
    """Bytes of weights and training state one rank holds."""
    weights, trained = WEIGHT_BYTES * counts.total, TRAINED_STATE_BYTES * counts.trained
    if strategy == "ddp":
        return weights + trained
    if strategy == "zero2":
        return weights + -(-trained // world_size)
    if strategy == "fsdp":
        return -(-(weights + trained) // world_size) + (WEIGHT_BYTES * counts.largest_unit if world_size > 1 else 0)
    raise ValueError(f"unknown strategy {strategy!r}: one of {STRATEGIES}")


def qwen_counts(name: str, *, vocab: int, hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int,
                tied: bool, top_blocks: int = 4) -> ModelCounts:
    """Parameter counts of a Qwen2 shape on the meta device, trained as ``consolidate_top_blocks`` says."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from biollm_core.models.hf_causal_lm import HFCausalLMNeocortex

    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, tie_word_embeddings=tied)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    neocortex = HFCausalLMNeocortex(model, vocab_size=16384, consolidate_top_blocks=top_blocks)
    layer = sum(p.numel() for p in model.model.layers[0].parameters())
    head = model.get_output_embeddings().weight.numel()
    return ModelCounts(name, sum(p.numel() for p in model.parameters()),
                       sum(p.numel() for _, p in neocortex.consolidation_parameters()), max(layer, head))


def shapes() -> list[ModelCounts]:
    """Qwen2.5-0.5B and Qwen2.5-7B as their published configs give them."""
    return [
        qwen_counts("Qwen2.5-0.5B", vocab=151936, hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, tied=True),
        qwen_counts("Qwen2.5-7B", vocab=152064, hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4, tied=False),
    ]


def main() -> int:
    for counts in shapes():
        print(f"{counts.name}: {counts.total / 1e6:.1f}M parameters, {counts.trained / 1e6:.1f}M consolidated "
              f"(top 4 blocks + norm + head), largest unit {counts.largest_unit / 1e6:.1f}M")
        for strategy in STRATEGIES:
            cells = [f"W={w}: {bytes_per_rank(counts, w, strategy) / 1e9:6.2f} GB" for w in (1, 2, 4, 8)]
            print(f"  {strategy:5}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
