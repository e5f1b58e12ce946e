"""A synthetic continual instruction stream: eight small tasks, each with a train and an eval split.

Every example is one JSON object ``{"task", "prompt", "response", "split"}`` (the instruction
benchmark's default field names). The items a prompt is built from -- numbers 0..99 and a fixed list of
short words -- are split once per seed into a train pool and a disjoint eval pool, so no number or word
of an eval prompt ever appears in a train prompt: the eval split measures the task, not memorised
examples. Answers (counts, sums, "even"/"odd") may of course be shared.

The generator is pure: the same seed gives the same examples, byte for byte.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

NUMBERS = tuple(range(100))
WORDS = tuple(
    "apple river stone cloud tiger lemon piano chair grape house mouse plant ocean bread light water table "
    "train sugar horse candle forest garden window pencil rabbit silver winter yellow basket bottle button "
    "carpet dragon engine flower guitar hammer island jacket kettle ladder magnet needle orange pepper "
    "rocket saddle tunnel violin".split()
)
VOWELS = frozenset("aeiou")
EVAL_FRACTION = 0.2
OUTPUT_NAME = "instructions.jsonl"


@dataclass(frozen=True)
class Pools:
    """The items one split's prompts are drawn from."""

    numbers: tuple[int, ...]
    words: tuple[str, ...]


def split_pools(seed: int, eval_fraction: float = EVAL_FRACTION) -> tuple[Pools, Pools]:
    """Split numbers and words into disjoint (train, eval) pools, seeded."""
    rng = random.Random(f"pools-{seed}")
    numbers, words = list(NUMBERS), list(WORDS)
    rng.shuffle(numbers)
    rng.shuffle(words)
    n_eval, w_eval = round(len(numbers) * eval_fraction), round(len(words) * eval_fraction)
    train = Pools(tuple(sorted(numbers[n_eval:])), tuple(sorted(words[w_eval:])))
    evaluation = Pools(tuple(sorted(numbers[:n_eval])), tuple(sorted(words[:w_eval])))
    return train, evaluation


def _numbers(rng: random.Random, pools: Pools, low: int = 3, high: int = 6) -> list[int]:
    return [rng.choice(pools.numbers) for _ in range(rng.randint(low, high))]


def _words(rng: random.Random, pools: Pools, low: int = 2, high: int = 5) -> list[str]:
    return [rng.choice(pools.words) for _ in range(rng.randint(low, high))]


def _join(items: Sequence[object]) -> str:
    return " ".join(str(item) for item in items)


def _sort(rng: random.Random, pools: Pools) -> tuple[str, str]:
    xs = _numbers(rng, pools)
    return f"sort: {_join(xs)}", _join(sorted(xs))


def _reverse(rng: random.Random, pools: Pools) -> tuple[str, str]:
    xs = _numbers(rng, pools)
    return f"reverse: {_join(xs)}", _join(xs[::-1])


def _arithmetic(rng: random.Random, pools: Pools) -> tuple[str, str]:
    a, b = rng.choice(pools.numbers), rng.choice(pools.numbers)
    if rng.random() < 0.5:
        return f"compute: {a} + {b}", str(a + b)
    a, b = max(a, b), min(a, b)  # results stay non-negative
    return f"compute: {a} - {b}", str(a - b)


def _word_count(rng: random.Random, pools: Pools) -> tuple[str, str]:
    ws = _words(rng, pools, 1, 7)
    return f"count words: {_join(ws)}", str(len(ws))


def _vowel_count(rng: random.Random, pools: Pools) -> tuple[str, str]:
    word = rng.choice(pools.words)
    return f"count vowels: {word}", str(sum(ch in VOWELS for ch in word))


def _uppercase(rng: random.Random, pools: Pools) -> tuple[str, str]:
    ws = _words(rng, pools, 1, 3)
    return f"uppercase: {_join(ws)}", _join(ws).upper()


def _last_token(rng: random.Random, pools: Pools) -> tuple[str, str]:
    ws = _words(rng, pools)
    return f"last word: {_join(ws)}", ws[-1]


def _parity(rng: random.Random, pools: Pools) -> tuple[str, str]:
    xs = _numbers(rng, pools, 2, 4)
    return f"parity of sum: {_join(xs)}", "even" if sum(xs) % 2 == 0 else "odd"


TASKS: dict[str, Callable[[random.Random, Pools], tuple[str, str]]] = {
    "sort": _sort,
    "reverse": _reverse,
    "arithmetic": _arithmetic,
    "word_count": _word_count,
    "vowel_count": _vowel_count,
    "uppercase": _uppercase,
    "last_token": _last_token,
    "parity": _parity,
}


def make_instructions(
    per_task: int = 256, eval_per_task: int = 32, seed: int = 0, tasks: Sequence[str] | None = None
) -> list[dict[str, str]]:
    """The examples: for each task of ``tasks`` (default: all of ``TASKS``, in its order) in that order,
    ``per_task`` train then ``eval_per_task`` eval. The stream's task order is the file's."""
    if per_task < 1 or eval_per_task < 1:
        raise ValueError(f"per_task ({per_task}) and eval_per_task ({eval_per_task}) must be at least 1")
    tasks = list(TASKS) if tasks is None else list(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks {tasks}: expected distinct names among {', '.join(TASKS)}")
    train_pools, eval_pools = split_pools(seed)
    examples: list[dict[str, str]] = []
    for task in tasks:
        make = TASKS[task]
        for split, pools, count in (("train", train_pools, per_task), ("eval", eval_pools, eval_per_task)):
            rng = random.Random(f"{seed}-{task}-{split}")  # str seeds hash stably (sha512), unlike hash()
            for _ in range(count):
                prompt, response = make(rng, pools)
                examples.append({"task": task, "prompt": prompt, "response": response, "split": split})
    return examples


def write_instructions(out_dir: Path, examples: Sequence[dict[str, str]]) -> Path:
    """Write ``examples`` to ``out_dir/instructions.jsonl`` (one JSON object a line, atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / OUTPUT_NAME
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(example) + "\n" for example in examples), encoding="utf-8")
    tmp.replace(path)
    return path
