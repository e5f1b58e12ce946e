"""The tiny causal transformer: the encode/decode split, causality, the active vocabulary."""

from __future__ import annotations

import torch

from biollm_core.models.tiny_transformer import TinyTransformer
from biollm_core.protocols import Neocortex

V, INPUT_V, T = 16, 20, 6


def make(injection_layer: int = 1) -> TinyTransformer:
    torch.manual_seed(0)
    return TinyTransformer(
        vocab_size=V,
        input_vocab_size=INPUT_V,
        hidden_size=16,
        num_layers=2,
        num_heads=2,
        mlp_ratio=2,
        max_seq_len=8,
        injection_layer=injection_layer,
    ).eval()


def ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, INPUT_V, (3, T), generator=torch.Generator().manual_seed(seed))


def test_is_a_neocortex_and_logits_cover_the_active_vocabulary() -> None:
    model = make()
    assert isinstance(model, Neocortex)
    x = ids()
    assert model.encode(x).shape == (3, T, 16)
    assert model(x).shape == (3, T, V)  # cue ids (16..19) are inputs only: never predicted
    assert [n for n, _ in model.consolidation_parameters()] == [n for n, _ in model.named_parameters()]


def test_decode_of_encode_is_forward_at_every_injection_point() -> None:
    x = ids()
    for layer in (0, 1, 2):
        model = make(layer)
        torch.testing.assert_close(model.decode(model.encode(x)), model(x))


def test_the_injection_point_splits_the_blocks() -> None:
    x = ids()
    low, high = make(0), make(2)
    high.load_state_dict(low.state_dict())
    hidden_low, hidden_high = low.encode(x), high.encode(x)
    assert not torch.allclose(hidden_low, hidden_high)  # two blocks more below the injection point
    torch.testing.assert_close(low.decode(hidden_low), high.decode(hidden_high))


def test_causal_a_later_token_does_not_change_earlier_logits() -> None:
    model = make()
    x = ids()
    changed = x.clone()
    changed[:, 4] = (changed[:, 4] + 1) % INPUT_V
    before, after = model(x), model(changed)
    torch.testing.assert_close(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_right_padding_does_not_change_real_tokens() -> None:
    model = make()
    x = ids()
    mask = torch.ones(3, T, dtype=torch.long)
    mask[1, 4:] = 0
    padded = x.clone()
    padded[1, 4:] = 0
    out = model(padded, mask)
    torch.testing.assert_close(out[1, :4], model(x[1:2, :4])[0])
    torch.testing.assert_close(out[0], model(x)[0])
