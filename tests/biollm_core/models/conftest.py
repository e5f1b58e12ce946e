"""Tiny Hugging Face models built locally (config -> save_pretrained -> load by path): no hub access.

Session-scoped, made by `biollm data make-tiny-lm`'s library function: a byte-level BPE tokenizer
trained with `tokenizers` on the generated instruction stream, and a 4-layer GPT-2 and Qwen2 of width
32 sized to that tokenizer, each saved with the tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from biollm_platform.data.make_instructions import make_instructions, write_instructions
from biollm_platform.data.tiny_lm import make_tiny_lm

TOKENIZER_VOCAB = 384
NUM_LAYERS = 4
WIDTH = 32
MAX_POSITIONS = 64


@pytest.fixture(scope="session")
def instructions_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_instructions(
        tmp_path_factory.mktemp("instructions"), make_instructions(per_task=24, eval_per_task=6, seed=0)
    )


def _tiny_lm(tmp_path_factory: pytest.TempPathFactory, instructions_path: Path, arch: str) -> Path:
    out = tmp_path_factory.mktemp(arch) / "model"
    make_tiny_lm(
        instructions_path,
        out,
        arch=arch,
        vocab_size=TOKENIZER_VOCAB,
        layers=NUM_LAYERS,
        width=WIDTH,
        max_positions=MAX_POSITIONS,
        seed=0,
    )
    return out


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory, instructions_path: Path) -> Path:
    return _tiny_lm(tmp_path_factory, instructions_path, "gpt2")


@pytest.fixture(scope="session")
def qwen2_dir(tmp_path_factory: pytest.TempPathFactory, instructions_path: Path) -> Path:
    return _tiny_lm(tmp_path_factory, instructions_path, "qwen2")


@pytest.fixture(scope="session")
def tokenizer_dir(gpt2_dir: Path) -> Path:
    """A directory the tokenizer loads from (the GPT-2 one: every model directory carries the tokenizer)."""
    return gpt2_dir


@pytest.fixture(scope="session", params=["gpt2", "qwen2"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    """Each tiny model in turn."""
    return request.getfixturevalue(f"{request.param}_dir")
