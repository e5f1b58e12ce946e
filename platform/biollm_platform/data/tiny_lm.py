"""A tiny causal LM made locally, so Hugging Face experiments and tests run with no hub access.

``make_tiny_lm`` trains a byte-level BPE tokenizer with ``tokenizers`` on an instruction file's prompts
and responses, sizes a freshly initialised GPT-2 or Qwen2 to it, and saves both with ``save_pretrained``
into one directory: ``from_pretrained(DIR, local_files_only=True)`` loads either, and
``model=hf_causal_lm model.hf_model_name=DIR model.hf_local_files_only=true`` runs on it.

The tokenizer splits digits one by one (``12`` is ``1 2``: the arithmetic and sorting tasks see the
digits) and has one special token, ``<|endoftext|>`` (id 0), its EOS, BOS, UNK and pad. It is trained
on every example, eval split included, as a pretrained model's tokenizer would have seen those words.
The model's vocabulary is the tokenizer's size, which can fall short of the requested one on small data
(the trainer runs out of pairs to merge). Weights are random: the same seed gives the same weights.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from biollm_core.benchmarks.instruction_data import read_examples
from biollm_core.errors import UserError

if TYPE_CHECKING:  # torch, tokenizers and transformers (3 s) are imported by the functions that use them
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

Architecture = Literal["gpt2", "qwen2"]
ARCHITECTURES: tuple[Architecture, ...] = ("gpt2", "qwen2")
DEFAULT_HEADS: dict[str, int] = {"gpt2": 2, "qwen2": 4}  # Qwen2 uses grouped-query attention: heads / 2 KV heads
EOS = "<|endoftext|>"
MIN_VOCAB = 257  # the 256 byte symbols and EOS
MARKER = "tiny_lm.json"  # written beside the weights: the settings and the data it was made from


@dataclass(frozen=True)
class TinyLMInfo:
    """What ``make_tiny_lm`` wrote (also saved as ``DIR/tiny_lm.json``)."""

    path: str
    arch: str
    vocab_size: int  # the tokenizer's size = the model's embedding rows
    requested_vocab_size: int
    layers: int
    width: int
    heads: int
    max_positions: int
    parameters: int
    seed: int
    data: str
    data_sha256: str
    texts: int


def instruction_texts(path: Path, prompt_field: str = "prompt", response_field: str = "response") -> list[str]:
    """Every example's ``prompt + "\\n"`` (the benchmark's default prompt template) and its response."""
    if not path.is_file():
        raise UserError(f"--data: {path} does not exist or is not a file (make one: biollm data make-instructions)")
    examples = read_examples(
        local_path=str(path),
        dataset_name=None,
        dataset_split="train",
        prompt_field=prompt_field,
        response_field=response_field,
        task_field=None,
        max_examples=None,
    )
    return [text for e in examples for text in (e.prompt + "\n", e.response)]


def train_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer of at most ``vocab_size`` tokens trained on ``texts``, EOS id 0."""
    if vocab_size < MIN_VOCAB:
        raise UserError(f"--vocab {vocab_size}: a byte-level tokenizer needs at least {MIN_VOCAB} tokens")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS,
        bos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
        model_max_length=max_length,
    )


def build_model(
    arch: Architecture,
    *,
    vocab_size: int,
    layers: int,
    width: int,
    heads: int | None = None,
    max_positions: int,
    seed: int,
) -> PreTrainedModel:
    """A randomly initialised GPT-2 or Qwen2 (no dropout); the global torch RNG is left untouched."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    heads = heads or DEFAULT_HEADS[arch]
    if width % heads or (arch == "qwen2" and heads % 2):
        raise UserError(
            f"--width {width} / --heads {heads}: the width must be a multiple of the heads"
            + (" and qwen2 needs an even number of heads (heads / 2 KV heads)" if arch == "qwen2" else "")
        )
    # EOS (id 0) doubles as BOS. No pad_token_id: Qwen2 would make row 0 of its embedding a zero,
    # untrained padding row, and EOS is a real token here.
    if arch == "gpt2":
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=max_positions,
            n_embd=width,
            n_layer=layers,
            n_head=heads,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=0,
            eos_token_id=0,
        )
        model_class: type[PreTrainedModel] = GPT2LMHeadModel
    elif arch == "qwen2":
        config = Qwen2Config(
            vocab_size=vocab_size,
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads // 2,
            max_position_embeddings=max_positions,
            tie_word_embeddings=False,
            bos_token_id=0,
            eos_token_id=0,
        )
        model_class = Qwen2ForCausalLM
    else:
        raise UserError(f"--arch {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config)


def save_tiny_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> Path:
    """``save_pretrained`` the model and its tokenizer into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def make_tiny_lm(
    data: Path,
    out_dir: Path,
    *,
    arch: Architecture = "gpt2",
    vocab_size: int = 384,
    layers: int = 4,
    width: int = 64,
    heads: int | None = None,
    max_positions: int = 128,
    seed: int = 0,
    prompt_field: str = "prompt",
    response_field: str = "response",
) -> TinyLMInfo:
    """Train the tokenizer on ``data``, build the model, write both (and ``tiny_lm.json``) to ``out_dir``.

    ``out_dir`` must be missing, empty, or an earlier ``make_tiny_lm`` output (replaced as a whole, only
    once the new one is complete): nothing else is ever overwritten.
    """
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MARKER).is_file())):
        raise UserError(f"--out: {out_dir} exists and is not empty nor a make-tiny-lm output; choose another --out")
    texts = instruction_texts(data, prompt_field, response_field)
    tokenizer = train_tokenizer(texts, vocab_size, max_positions)
    model = build_model(
        arch,
        vocab_size=len(tokenizer),
        layers=layers,
        width=width,
        heads=heads,
        max_positions=max_positions,
        seed=seed,
    )
    info = TinyLMInfo(
        path=str(out_dir.resolve()),
        arch=arch,
        vocab_size=len(tokenizer),
        requested_vocab_size=vocab_size,
        layers=layers,
        width=width,
        heads=heads or DEFAULT_HEADS[arch],
        max_positions=max_positions,
        parameters=sum(p.numel() for p in model.parameters()),
        seed=seed,
        data=str(data.resolve()),
        data_sha256=hashlib.sha256(data.read_bytes()).hexdigest(),
        texts=len(texts),
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}-{secrets.token_hex(4)}.tmp"
    staging.mkdir()  # beside out_dir: the final rename stays on one filesystem
    try:
        save_tiny_lm(model, tokenizer, staging)
        (staging / MARKER).write_text(json.dumps(asdict(info), indent=1) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info
