"""make_tiny_lm: a locally made model + tokenizer that Hugging Face and the engine load offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from biollm_core.errors import UserError
from biollm_core.models.hf_causal_lm import build_hf_neocortex, load_tokenizer
from biollm_platform.data.make_instructions import make_instructions, write_instructions
from biollm_platform.data.tiny_lm import EOS, MARKER, make_tiny_lm

SMALL = {"layers": 2, "width": 16, "max_positions": 48}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_instructions(tmp_path_factory.mktemp("data"), make_instructions(per_task=16, eval_per_task=4, seed=1))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    out = tmp_path_factory.mktemp("gpt2") / "tiny"
    make_tiny_lm(data, out, arch="gpt2", vocab_size=300, seed=3, **SMALL)
    return out


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_model_and_tokenizer_load_back_offline_and_in_the_engine(tmp_path: Path, data: Path, arch: str) -> None:
    info = make_tiny_lm(data, tmp_path / arch, arch=arch, vocab_size=300, **SMALL)

    model = AutoModelForCausalLM.from_pretrained(tmp_path / arch, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / arch, local_files_only=True)
    assert model.config.model_type == arch and model.config.num_hidden_layers == 2
    assert info.vocab_size == len(tokenizer) == 300 == model.get_input_embeddings().weight.shape[0]
    assert tokenizer.eos_token == tokenizer.pad_token == EOS and tokenizer.eos_token_id == tokenizer.pad_token_id == 0
    assert tokenizer.decode(tokenizer("sort: 12 7\n")["input_ids"]) == "sort: 12 7\n"
    assert tokenizer.tokenize("123") == ["1", "2", "3"]  # digits one by one

    neocortex = build_hf_neocortex(model_name=str(tmp_path / arch), vocab_size=info.vocab_size, local_files_only=True)
    engine_tokenizer = load_tokenizer(str(tmp_path / arch), local_files_only=True)
    ids = torch.tensor([engine_tokenizer("uppercase: apple\n")["input_ids"]])
    assert neocortex(ids).shape == (1, ids.shape[1], 300)
    assert neocortex.hidden_size == 16


def test_marker_records_the_settings_and_the_data(gpt2: Path, data: Path) -> None:
    marker = json.loads((gpt2 / MARKER).read_text())
    assert marker["arch"] == "gpt2" and marker["vocab_size"] == 300 and marker["seed"] == 3
    assert marker["data"] == str(data.resolve()) and marker["texts"] == 2 * 8 * (16 + 4)
    model = AutoModelForCausalLM.from_pretrained(gpt2, local_files_only=True)
    assert marker["parameters"] == sum(p.numel() for p in model.parameters())


def test_same_seed_same_weights_and_other_seed_other_weights(tmp_path: Path, gpt2: Path, data: Path) -> None:
    make_tiny_lm(data, tmp_path / "again", arch="gpt2", vocab_size=300, seed=3, **SMALL)
    make_tiny_lm(data, tmp_path / "other", arch="gpt2", vocab_size=300, seed=4, **SMALL)
    reference = AutoModelForCausalLM.from_pretrained(gpt2, local_files_only=True).state_dict()
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "again", local_files_only=True).state_dict()
    other = AutoModelForCausalLM.from_pretrained(tmp_path / "other", local_files_only=True).state_dict()
    assert all(torch.equal(reference[k], again[k]) for k in reference)
    assert not torch.equal(reference["transformer.wte.weight"], other["transformer.wte.weight"])
    assert (gpt2 / "tokenizer.json").read_text() == (tmp_path / "again" / "tokenizer.json").read_text()


def test_global_torch_rng_is_left_alone(tmp_path: Path, data: Path) -> None:
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    make_tiny_lm(data, tmp_path / "m", vocab_size=260, **SMALL)
    assert torch.equal(torch.rand(3), expected)


def test_small_data_gives_a_smaller_vocabulary_and_the_model_follows(tmp_path: Path) -> None:
    data = tmp_path / "tiny.jsonl"
    data.write_text(json.dumps({"prompt": "ab", "response": "ba"}) + "\n")
    info = make_tiny_lm(data, tmp_path / "m", vocab_size=1000, **SMALL)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m", local_files_only=True)
    assert info.requested_vocab_size == 1000 and 257 <= info.vocab_size < 1000
    assert model.get_input_embeddings().weight.shape[0] == info.vocab_size


def test_other_field_names(tmp_path: Path) -> None:
    data = tmp_path / "alpaca.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"say {i}", "output": str(i)}) + "\n" for i in range(5)))
    info = make_tiny_lm(data, tmp_path / "m", vocab_size=260, prompt_field="instruction", response_field="output", **SMALL)
    assert info.texts == 10
    with pytest.raises(UserError, match=r"alpaca.jsonl:1: missing field 'prompt'"):
        make_tiny_lm(data, tmp_path / "n", vocab_size=260, **SMALL)


def test_an_earlier_output_is_replaced_but_nothing_else_is_overwritten(tmp_path: Path, data: Path) -> None:
    make_tiny_lm(data, tmp_path / "m", vocab_size=260, seed=0, **SMALL)
    (tmp_path / "m" / "stale.txt").write_text("from the first run")
    make_tiny_lm(data, tmp_path / "m", vocab_size=270, seed=1, **SMALL)
    assert json.loads((tmp_path / "m" / MARKER).read_text())["vocab_size"] == 270
    assert not (tmp_path / "m" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="--out: .*mine exists and is not empty"):
        make_tiny_lm(data, tmp_path / "mine", vocab_size=260, **SMALL)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vocab_size": 100}, "--vocab 100: a byte-level tokenizer needs at least 257 tokens"),
        ({"vocab_size": 260, "width": 10, "heads": 4}, "--width 10 / --heads 4"),
        ({"vocab_size": 260, "arch": "qwen2", "width": 12, "heads": 3}, "qwen2 needs an even number of heads"),
    ],
)
def test_bad_settings_are_user_errors(tmp_path: Path, data: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        make_tiny_lm(data, tmp_path / "m", **{**SMALL, **kwargs})
    assert not (tmp_path / "m").exists()


def test_missing_data_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--data: .*nope.jsonl does not exist"):
        make_tiny_lm(tmp_path / "nope.jsonl", tmp_path / "m")
