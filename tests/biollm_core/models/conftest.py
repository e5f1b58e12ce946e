"""Tiny Hugging Face models built locally (config -> save_pretrained -> load by path): no hub access.

Session-scoped: a byte-level BPE tokenizer trained with `tokenizers` on the generated instruction stream,
and a 4-layer GPT-2 and Qwen2 of width 32 sized to that tokenizer, each saved with the tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from biollm_platform.data.make_instructions import make_instructions, write_instructions

EOS = "<|endoftext|>"
TOKENIZER_VOCAB = 384
NUM_LAYERS = 4


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: on a shared 2-core machine intra-op threads cost far more than they give (measured:
    the 24-step GPT-2 run of test_hf_causal_lm_run.py took 63 s with 2 threads under load, 0.7 s with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def instructions_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_instructions(
        tmp_path_factory.mktemp("instructions"), make_instructions(per_task=24, eval_per_task=6, seed=0)
    )


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, instructions_path: Path) -> Path:
    texts = [
        line
        for e in make_instructions(per_task=24, eval_per_task=6, seed=0)
        for line in (e["prompt"] + "\n", e["response"])
    ]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, bos_token=EOS, unk_token=EOS)
    path = tmp_path_factory.mktemp("tokenizer")
    fast.save_pretrained(path)
    return path


def _save(model: torch.nn.Module, tokenizer_dir: Path, path: Path) -> Path:
    model.save_pretrained(path)
    PreTrainedTokenizerFast.from_pretrained(tokenizer_dir).save_pretrained(path)
    return path


def _vocab(tokenizer_dir: Path) -> int:
    return len(PreTrainedTokenizerFast.from_pretrained(tokenizer_dir))


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=_vocab(tokenizer_dir),
        n_positions=64,
        n_embd=32,
        n_layer=NUM_LAYERS,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return _save(GPT2LMHeadModel(config), tokenizer_dir, tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="session")
def qwen2_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=_vocab(tokenizer_dir),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    return _save(Qwen2ForCausalLM(config), tokenizer_dir, tmp_path_factory.mktemp("qwen2"))


@pytest.fixture(scope="session", params=["gpt2", "qwen2"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    """Each tiny model in turn."""
    return request.getfixturevalue(f"{request.param}_dir")
