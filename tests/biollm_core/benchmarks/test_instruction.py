"""The instruction benchmark: parsing errors at file:line, task ids, splits, masking and shifts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from biollm_core.benchmarks.instruction import IGNORE, build_instruction_benchmark, encode_example
from biollm_core.errors import UserError
from biollm_core.protocols import ContinualBenchmark

WORDS = ["<eos>", "say", "a", "b", "c", "d", "one", "two", "three", "x", "y"]  # ids 0..10; "rare" is 11
ID = {word: i for i, word in enumerate([*WORDS, "rare"])}


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer with known ids, so labels can be checked by hand."""
    model = models.WordLevel(vocab=ID, unk_token="<eos>")
    backend = Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _records(tasks: dict[str, int]) -> list[dict[str, Any]]:
    words = ["a", "b", "c", "d", "x", "y"]
    return [
        {
            "task": task,
            "prompt": f"say {words[i % 6]} {words[(i + 1) % 6]}",
            "response": f"{words[i % 6]} one",
        }
        for task, count in tasks.items()
        for i in range(count)
    ]


def _build(tokenizer, path: Path, **overrides: Any):
    settings: dict[str, Any] = dict(
        local_path=str(path),
        dataset_name=None,
        dataset_split="train",
        prompt_field="prompt",
        response_field="response",
        task_field="task",
        max_examples=None,
        min_examples_per_task=4,
        heldout_per_task=2,
        prompt_template="{prompt}\n",
        ignore_prompt_loss=True,
        enforce_full_vocab=True,
        steps_per_task=5,
        seq_len=8,
        vocab_size=12,
        seed=7,
    )
    settings.update(overrides)
    return build_instruction_benchmark(tokenizer=tokenizer, **settings)


def test_labels_are_shifted_and_the_prompt_is_masked() -> None:
    prompt, response = [1, 2, 3], [6, 7, 0]  # "say a b" -> "one two <eos>"
    inputs, labels, mask = encode_example(prompt, response, seq_len=8, pad_id=0, ignore_prompt_loss=True)
    assert inputs == [1, 2, 3, 6, 7, 0, 0, 0]
    assert labels == [IGNORE, IGNORE, 6, 7, 0, IGNORE, IGNORE, IGNORE]  # labels[t] = token t+1, answers only
    assert mask == [1, 1, 1, 1, 1, 0, 0, 0]
    _, labels, _ = encode_example(prompt, response, seq_len=8, pad_id=0, ignore_prompt_loss=False)
    assert labels == [2, 3, 6, 7, 0, IGNORE, IGNORE, IGNORE]
    inputs, labels, mask = encode_example(prompt, response, seq_len=4, pad_id=0, ignore_prompt_loss=True)
    assert (inputs, labels, mask) == (
        [1, 2, 3, 6],
        [IGNORE, IGNORE, 6, 7],
        [1, 1, 1, 1],
    )  # cut to seq_len + 1 tokens


def test_benchmark_tokenises_with_template_and_eos(tokenizer, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", _records({"t": 6}))
    bench = _build(tokenizer, path, heldout_per_task=1, min_examples_per_task=1)
    assert isinstance(bench, ContinualBenchmark)
    batch = bench.heldout(0)
    row = batch.input_ids[0].tolist()
    n = int(batch.attention_mask[0].sum())
    # "say w1 w2" then "w1 one" then <eos>: the inputs are every token but the last
    assert n == 5 and row[:1] == [ID["say"]] and row[n:] == [0] * (8 - n)
    assert batch.labels[0].tolist()[:n] == [IGNORE, IGNORE, row[1], ID["one"], ID["<eos>"]]
    assert batch.labels[0, n:].eq(IGNORE).all()


def test_tasks_come_one_after_another_with_stable_ids(tokenizer, tmp_path: Path) -> None:
    records = _records({"zeta": 6, "alpha": 6, "mid": 6})
    first = _build(tokenizer, _write_jsonl(tmp_path / "a.jsonl", records))
    second = _build(tokenizer, _write_jsonl(tmp_path / "b.jsonl", records[::-1]))  # another order
    assert first.task_names == second.task_names == ["alpha", "mid", "zeta"]
    assert (first.num_tasks, first.total_steps, first.segment_ends()) == (3, 15, [4, 9, 14])
    assert [first.task_at(s) for s in (0, 4, 5, 14, 20)] == [0, 0, 1, 2, 2]
    for task in range(3):
        assert first.heldout(task).task_id == task
        assert sorted(map(tuple, first.heldout(task).input_ids.tolist())) == sorted(
            map(tuple, second.heldout(task).input_ids.tolist())
        )


def test_train_batches_are_a_pure_function_of_seed_and_step(tokenizer, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", _records({"p": 12, "q": 12}))
    one, two = _build(tokenizer, path), _build(tokenizer, path)
    a, b = one.train_batch(6, 4), two.train_batch(6, 4)
    assert a.task_id == b.task_id == 1
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
    assert a.input_ids.shape == (4, 8) and a.attention_mask.shape == (4, 8)
    assert not all(torch.equal(one.train_batch(s, 4).input_ids, a.input_ids) for s in (5, 7, 8))
    assert _build(tokenizer, path).train_batch(0, 50).input_ids.shape == (50, 8)  # more than the task holds
    assert len(one.heldout(0)) == 2 and len(one._train[0]) == 10  # seeded draw of heldout_per_task examples


def test_split_field_forms_the_heldout_set(tokenizer, tmp_path: Path) -> None:
    records = _records({"t": 8})
    for r in records[6:]:
        r["split"] = "eval"
    bench = _build(tokenizer, _write_jsonl(tmp_path / "d.jsonl", records), heldout_per_task=5)
    expected = [[ID[w] for w in (r["prompt"] + " " + r["response"]).split()] for r in records[6:]]
    held = bench.heldout(0)
    assert [
        row[:n] for row, n in zip(held.input_ids.tolist(), held.attention_mask.sum(1).tolist(), strict=True)
    ] == expected
    assert len(bench._train[0]) == 6  # every non-eval example trains


def test_malformed_jsonl_names_file_and_line(tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task": "t", "prompt": "a", "response": "b"}\n\n{"task": "t", "prompt": \n')
    with pytest.raises(UserError, match=rf"{path}:3: malformed JSON"):
        _build(tokenizer, path)


def test_missing_field_names_file_line_and_key(tokenizer, tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "d.jsonl", [{"task": "t", "prompt": "a", "response": "b"}, {"task": "t", "prompt": "a"}]
    )
    with pytest.raises(UserError, match=rf"{path}:2: missing field 'response' \(benchmark.response_field\)"):
        _build(tokenizer, path)


def test_json_array_errors_name_the_elements_line(tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(
        '[\n  {"task": "t", "prompt": "a", "response": "b"},\n  {"task": "t",\n   "prompt": "a"}\n]\n'
    )
    with pytest.raises(UserError, match=rf"{path}:3: missing field 'response'"):
        _build(tokenizer, path)
    path.write_text('[\n  {"task": "t", "prompt": "a", "response": "b"}\n  {"task": "t"}\n]\n')
    with pytest.raises(UserError, match=rf"{path}:3: malformed JSON"):
        _build(tokenizer, path)
    path.write_text(json.dumps(_records({"t": 6}), indent=1))
    assert _build(tokenizer, path).num_tasks == 1


def test_empty_task_name_and_too_small_task_are_errors(tokenizer, tmp_path: Path) -> None:
    records = _records({"t": 6})
    records[4]["task"] = "  "
    path = _write_jsonl(tmp_path / "d.jsonl", records)
    with pytest.raises(UserError, match=rf"{path}:5: empty task name in field 'task'"):
        _build(tokenizer, path)
    path = _write_jsonl(tmp_path / "e.jsonl", _records({"big": 6, "small": 2}))
    with pytest.raises(
        UserError,
        match=rf"task 'small' \(first at {path}:7\) has 2 usable examples of 2; "
        r"benchmark.min_examples_per_task is 4",
    ):
        _build(tokenizer, path)
    path = _write_jsonl(tmp_path / "f.jsonl", [])
    with pytest.raises(UserError, match="no examples found"):
        _build(tokenizer, path)


def test_vocab_cap_below_the_tokenizer(tokenizer, tmp_path: Path) -> None:
    records = _records({"t": 6}) + [{"task": "t", "prompt": "say rare", "response": "one"}]
    path = _write_jsonl(tmp_path / "d.jsonl", records)
    with pytest.raises(
        UserError,
        match=r"tokenizer has 12 tokens but model.vocab_size is 11: set model.vocab_size=12, "
        r"or benchmark.enforce_full_vocab=false",
    ):
        _build(tokenizer, path, vocab_size=11)
    bench = _build(tokenizer, path, vocab_size=11, enforce_full_vocab=False)  # the "rare" example is dropped
    rows = torch.cat([bench.heldout(0).input_ids, bench.train_batch(0, 64).input_ids])
    assert rows.max() < 11 and len(bench.heldout(0)) + len(bench._train[0]) == 6


def test_hub_dataset_path_reads_through_datasets(tokenizer, tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "data.jsonl", _records({"t": 6}))  # a local dataset directory: no hub access
    bench = _build(tokenizer, None, local_path=None, dataset_name=str(tmp_path), dataset_split="train")
    assert bench.num_tasks == 1 and len(bench.heldout(0)) == 2
    with pytest.raises(UserError, match="benchmark.dataset_name=.*cannot load"):
        _build(tokenizer, None, local_path=None, dataset_name=str(tmp_path / "missing"))


@pytest.mark.parametrize(("total_steps", "ends"), [(7, [4, 6]), (3, [2]), (15, [4, 9, 14]), (20, [4, 9, 19])])
def test_train_max_steps_sets_the_length_of_the_stream(tokenizer, tmp_path: Path, total_steps: int, ends: list[int]) -> None:
    """`benchmark=instruction train.max_steps=20` ran the whole stream (1,600 steps) before: it must stop at 20."""
    records = _records({"zeta": 6, "alpha": 6, "mid": 6})  # 3 tasks of 5 steps (steps_per_task=5)
    bench = _build(tokenizer, _write_jsonl(tmp_path / "a.jsonl", records), total_steps=total_steps)
    assert (bench.total_steps, bench.segment_ends()) == (total_steps, ends)
