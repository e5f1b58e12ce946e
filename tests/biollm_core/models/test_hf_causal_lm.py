"""The Hugging Face neocortex on tiny GPT-2 and Qwen2 models saved and loaded locally (no hub)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from biollm_core.errors import UserError
from biollm_core.models.hf_causal_lm import HFCausalLMNeocortex, build_hf_neocortex, load_tokenizer
from biollm_core.protocols import Neocortex

CAP = 200  # active vocabulary, below the tokenizer's 384


def _build(path: Path, **kwargs) -> HFCausalLMNeocortex:
    return build_hf_neocortex(model_name=str(path), local_files_only=True, vocab_size=CAP, **kwargs)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, CAP, (3, 10), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 7:] = 0  # right padding, as the instruction benchmark pads
    return input_ids, attention_mask


def _reference(path: Path) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()


def test_loads_model_and_tokenizer_by_path_offline(model_dir: Path) -> None:
    neocortex = _build(model_dir)
    tokenizer = load_tokenizer(str(model_dir), local_files_only=True)
    assert isinstance(neocortex, Neocortex)
    assert len(tokenizer) == neocortex.model.get_output_embeddings().weight.shape[0]
    assert neocortex.vocab_size == CAP and neocortex.hidden_size == 32


@pytest.mark.parametrize("fraction", [None, 0.5, 1.0])
def test_shapes_and_base_equals_the_models_own_logits_cut_to_the_cap(
    model_dir: Path, fraction: float | None
) -> None:
    neocortex = _build(model_dir, injection_fraction=fraction).eval()
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        hidden = neocortex.encode(input_ids, attention_mask)
        logits = neocortex.decode(hidden, attention_mask)
        expected = _reference(model_dir)(input_ids=input_ids, attention_mask=attention_mask).logits[..., :CAP]
    assert hidden.shape == (3, 10, 32) and hidden.dtype == torch.float32
    assert logits.shape == (3, 10, CAP) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_hook_injection_changes_hidden_states_only_from_the_chosen_layer_on(model_dir: Path) -> None:
    neocortex = _build(model_dir, injection_fraction=0.5).eval()
    k = neocortex.injection_layer
    assert k == 2
    reference = _reference(model_dir)
    layers = reference.get_submodule(neocortex._layer_path)
    input_ids, attention_mask = _inputs()
    delta = 0.5 * torch.randn(3, 10, 32, generator=torch.Generator().manual_seed(1))

    def add_delta(module, args, output):
        return output + delta

    with torch.no_grad():
        clean = reference(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        # prepend: run before the transformers hook that records hidden_states, so it records the sum
        handle = layers[k - 1].register_forward_hook(add_delta, prepend=True)
        try:
            injected = reference(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
            )
        finally:
            handle.remove()
        hidden = neocortex.encode(input_ids, attention_mask)
        combined = neocortex.decode(hidden + delta, attention_mask)

    # hidden_states[i] enters layer i: those below the injection point are untouched, the rest change
    for i in range(k):
        torch.testing.assert_close(injected.hidden_states[i], clean.hidden_states[i], rtol=0, atol=0)
    torch.testing.assert_close(hidden, clean.hidden_states[k])
    torch.testing.assert_close(injected.hidden_states[k], clean.hidden_states[k] + delta)
    for i in range(k + 1, reference.config.num_hidden_layers + 1):
        assert (injected.hidden_states[i] - clean.hidden_states[i]).abs().max() > 1e-3
    torch.testing.assert_close(combined, injected.logits[..., :CAP], rtol=1e-5, atol=1e-5)


def test_encode_runs_only_the_lower_layers_and_decode_only_the_upper(model_dir: Path) -> None:
    neocortex = _build(model_dir, injection_fraction=0.5).eval()
    layers = neocortex._layers
    calls = [0] * len(layers)
    handles = [
        layer.register_forward_hook(lambda m, a, o, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, layer in enumerate(layers)
    ]
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        hidden = neocortex.encode(input_ids, attention_mask)
        assert calls == [1, 1, 0, 0]
        neocortex.decode(hidden, attention_mask)
        assert calls == [1, 1, 1, 1]
    for handle in handles:
        handle.remove()
    assert all(
        type(layer).__name__ != "_InjectedHidden" for layer in neocortex._layers
    )  # the swap was undone


def test_consolidate_top_blocks_freezes_the_rest_and_reduces_memory(qwen2_dir: Path) -> None:
    full = _build(qwen2_dir)
    top = _build(qwen2_dir, consolidate_top_blocks=1)
    names = [name for name, _ in top.consolidation_parameters()]
    assert names and all(
        name.startswith(("model.model.layers.3.", "model.model.norm.", "model.lm_head.")) for name in names
    )
    assert {"model.model.norm.weight", "model.lm_head.weight"} <= set(names)
    frozen = [name for name, p in top.named_parameters() if not p.requires_grad]
    assert "model.model.embed_tokens.weight" in frozen and "model.model.layers.0.mlp.up_proj.weight" in frozen
    assert len(frozen) + len(names) == len(list(top.parameters()))
    expected = 2 * 4 * sum(p.numel() for _, p in top.consolidation_parameters())  # Fisher + anchor, fp32
    assert top.consolidation_state_bytes() == expected
    assert top.consolidation_state_bytes() < full.consolidation_state_bytes()
    assert full.consolidation_state_bytes() == 2 * 4 * sum(p.numel() for p in full.parameters())


def test_frozen_blocks_get_no_gradient_through_base(gpt2_dir: Path) -> None:
    neocortex = _build(gpt2_dir, consolidate_top_blocks=1, injection_fraction=0.5).train()
    input_ids, attention_mask = _inputs()
    neocortex(input_ids, attention_mask).logsumexp(-1).mean().backward()
    trained = dict(neocortex.consolidation_parameters())
    for name, p in neocortex.named_parameters():
        assert (p.grad is not None) == (name in trained), name


def test_gradient_checkpointing_gives_the_same_gradients(model_dir: Path) -> None:
    input_ids, attention_mask = _inputs()
    grads = []
    for checkpointing in (False, True):
        neocortex = _build(model_dir, injection_fraction=0.5, gradient_checkpointing=checkpointing).train()
        neocortex(input_ids, attention_mask).logsumexp(-1).mean().backward()
        grads.append({name: p.grad for name, p in neocortex.consolidation_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], msg=name)


def test_dtype_is_applied_and_the_boundary_stays_float32(qwen2_dir: Path) -> None:
    neocortex = _build(qwen2_dir, torch_dtype="bf16", injection_fraction=0.5)
    assert neocortex.dtype == torch.bfloat16
    input_ids, attention_mask = _inputs()
    with torch.no_grad():
        hidden = neocortex.encode(input_ids, attention_mask)
        logits = neocortex.decode(hidden + torch.zeros_like(hidden), attention_mask)
    assert hidden.dtype == torch.float32 and logits.dtype == torch.float32 and logits.shape == (3, 10, CAP)


def test_bad_settings_are_user_errors(gpt2_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"model.vocab_size=1000 exceeds the model's vocabulary \(384"):
        build_hf_neocortex(model_name=str(gpt2_dir), local_files_only=True, vocab_size=1000)
    with pytest.raises(UserError, match="consolidate_top_blocks=9 exceeds the model's 4 decoder layers"):
        _build(gpt2_dir, consolidate_top_blocks=9)
    missing = tmp_path / "no-such-model"
    with pytest.raises(UserError, match="cannot load the model.*hf_local_files_only=true"):
        _build(missing)
    with pytest.raises(UserError, match="cannot load"):
        load_tokenizer(str(missing), local_files_only=True)


def test_qwen_half_billion_memory_figures() -> None:
    """Fisher + anchor bytes (fp32) of a Qwen2.5-0.5B-shaped model, built on the meta device (no weights).

    Measured here: 494.0M parameters; every parameter: 3.95 GB; top 4 of 24 blocks + norm + tied head
    (195.8M parameters; the head is the 136.1M-parameter input embedding): 1.57 GB, of which the top 4
    blocks + norm are 0.48 GB. AdamW's two moments cost the same again over the same parameters.
    """
    config = Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    full = HFCausalLMNeocortex(model, vocab_size=16384)
    top = HFCausalLMNeocortex(model, vocab_size=16384, consolidate_top_blocks=4)
    n_full = sum(p.numel() for _, p in full.consolidation_parameters())
    n_top = sum(p.numel() for _, p in top.consolidation_parameters())
    assert round(n_full / 1e6, 1) == 494.0
    assert round(full.consolidation_state_bytes(torch.float32) / 1e9, 2) == 3.95
    assert round(n_top / 1e6, 1) == 195.8
    assert round(top.consolidation_state_bytes(torch.float32) / 1e9, 2) == 1.57
    embedding = model.get_input_embeddings().weight.numel()
    assert round(embedding / 1e6, 1) == 136.1
    assert round(2 * 4 * (n_top - embedding) / 1e9, 2) == 0.48
