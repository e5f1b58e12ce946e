"""The synthetic instruction stream: eight tasks, deterministic, eval items disjoint from train items."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from biollm_platform.data.make_instructions import TASKS, make_instructions, split_pools, write_instructions


def _items(prompt: str) -> set[str]:
    """The numbers and words a prompt is built from (the task's own words before ':' excluded)."""
    return set(re.findall(r"[a-z]+|\d+", prompt.split(":", 1)[1]))


def test_eight_tasks_with_train_and_eval_counts() -> None:
    examples = make_instructions(per_task=20, eval_per_task=5, seed=3)
    assert list(TASKS) == [
        "sort",
        "reverse",
        "arithmetic",
        "word_count",
        "vowel_count",
        "uppercase",
        "last_token",
        "parity",
    ]
    counts = Counter((e["task"], e["split"]) for e in examples)
    assert counts == {**{(t, "train"): 20 for t in TASKS}, **{(t, "eval"): 5 for t in TASKS}}
    assert all(set(e) == {"task", "prompt", "response", "split"} for e in examples)


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    assert make_instructions(10, 4, seed=1) == make_instructions(10, 4, seed=1)
    assert make_instructions(10, 4, seed=1) != make_instructions(10, 4, seed=2)


def test_eval_prompts_share_no_number_or_word_with_train_prompts() -> None:
    for seed in (0, 1, 2):
        examples = make_instructions(per_task=200, eval_per_task=50, seed=seed)
        train = set().union(*(_items(e["prompt"]) for e in examples if e["split"] == "train"))
        evaluation = set().union(*(_items(e["prompt"]) for e in examples if e["split"] == "eval"))
        assert evaluation and train and not train & evaluation
        train_pool, eval_pool = split_pools(seed)
        assert not set(train_pool.numbers) & set(eval_pool.numbers) and not set(train_pool.words) & set(
            eval_pool.words
        )


def test_answers_are_correct() -> None:
    by_task: dict[str, list[dict[str, str]]] = {}
    for e in make_instructions(per_task=30, eval_per_task=10, seed=5):
        by_task.setdefault(e["task"], []).append(e)
    for e in by_task["sort"]:
        assert e["response"].split() == [
            str(x) for x in sorted(int(x) for x in e["prompt"].split(":")[1].split())
        ]
    for e in by_task["reverse"]:
        assert e["response"].split() == e["prompt"].split(":")[1].split()[::-1]
    for e in by_task["arithmetic"]:
        a, op, b = e["prompt"].split(":")[1].split()
        assert int(e["response"]) == (int(a) + int(b) if op == "+" else int(a) - int(b)) >= 0
    for e in by_task["vowel_count"]:
        word = e["prompt"].split(":")[1].strip()
        assert int(e["response"]) == sum(ch in "aeiou" for ch in word)
    for e in by_task["parity"]:
        total = sum(int(x) for x in e["prompt"].split(":")[1].split())
        assert e["response"] == ("even" if total % 2 == 0 else "odd")
    for e in by_task["uppercase"]:
        assert e["response"] == e["prompt"].split(":", 1)[1].strip().upper()
    for e in by_task["last_token"]:
        assert e["response"] == e["prompt"].split()[-1]
    for e in by_task["word_count"]:
        assert int(e["response"]) == len(e["prompt"].split(":")[1].split())


def test_write_instructions_writes_one_object_a_line(tmp_path: Path) -> None:
    examples = make_instructions(per_task=3, eval_per_task=2, seed=0)
    path = write_instructions(tmp_path / "out", examples)
    assert path == tmp_path / "out" / "instructions.jsonl"
    assert [json.loads(line) for line in path.read_text().splitlines()] == examples


def test_a_task_mix_chooses_the_tasks_and_their_order() -> None:
    examples = make_instructions(per_task=3, eval_per_task=1, seed=5, tasks=["parity", "sort", "reverse"])
    order = list(dict.fromkeys(e["task"] for e in examples))
    assert order == ["parity", "sort", "reverse"] and len(examples) == 3 * 4
    full = {(e["task"], e["prompt"]) for e in make_instructions(per_task=3, eval_per_task=1, seed=5)}
    assert {(e["task"], e["prompt"]) for e in examples} <= full  # a task's examples do not depend on the mix


def test_a_bad_task_mix_is_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from biollm_platform.cli.app import app

    result = CliRunner().invoke(app, ["data", "make-instructions", "--out", str(tmp_path / "d"), "--tasks", "sort,bogus"])
    assert result.exit_code == 2 and "--tasks" in result.output and "bogus" in result.output
    assert not (tmp_path / "d").exists()
