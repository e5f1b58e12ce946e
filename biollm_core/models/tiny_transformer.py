"""The tiny causal transformer neocortex, split at an injection point (spec §1).

Pre-LayerNorm blocks, learned position embeddings, causal attention. ``encode`` runs the embeddings and
the ``injection_layer`` blocks below the injection point; ``decode`` runs the blocks above it, the final
norm and the head, and cuts the logits to the active vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        B, T, H = x.shape
        q, k, v = self.qkv(x).split(H, dim=2)
        q, k, v = (t.view(B, T, self.num_heads, H // self.num_heads).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hd)
        mask = None
        if key_padding is not None:
            # causal AND key is a real token; padding only ever sits on the right, so each query keeps itself.
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            mask = causal[None, None] & key_padding[:, None, None, :].bool()
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, H))


class Block(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden_size)
        self.attn = CausalSelfAttention(hidden_size, num_heads, dropout)
        self.ln_2 = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, mlp_ratio * hidden_size),
            nn.GELU(),
            nn.Linear(mlp_ratio * hidden_size, hidden_size),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), key_padding)
        return x + self.mlp(self.ln_2(x))


class TinyTransformer(nn.Module):
    """Implements the ``Neocortex`` protocol."""

    def __init__(
        self,
        *,
        vocab_size: int,
        input_vocab_size: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        mlp_ratio: int,
        max_seq_len: int,
        injection_layer: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.injection_layer = injection_layer
        # Rows beyond vocab_size are input-only (task cues): the head never predicts them.
        self.token_embedding = nn.Embedding(input_vocab_size, hidden_size)
        self.position_embedding = nn.Embedding(max_seq_len, hidden_size)
        self.blocks = nn.ModuleList(Block(hidden_size, num_heads, mlp_ratio, dropout) for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size, bias=False)
        self.apply(_init_weights)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)  # (B, T, H)
        for block in self.blocks[: self.injection_layer]:
            x = block(x, attention_mask)
        return x

    def decode(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = hidden
        for block in self.blocks[self.injection_layer :]:
            x = block(x, attention_mask)
        return self.head(self.ln_f(x))  # (B, T, V)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(input_ids, attention_mask), attention_mask)

    def consolidation_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.named_parameters())


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
