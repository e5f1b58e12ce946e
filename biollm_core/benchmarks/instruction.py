"""The instruction benchmark (spec §7): prompt/response pairs, one task after another.

- Task ids: sorted unique task names -> 0..n-1 (``assign_task_ids``); tasks are presented in id order,
  ``steps_per_task`` wake steps each, then the last task continues if the run is longer
  (``total_steps``, from ``train.max_steps``; shorter runs end inside the stream).
- Held-out sets: a task's examples with ``"split": "eval"`` when it has any (at most
  ``heldout_per_task``, in file order); otherwise the ``heldout_per_task`` examples that rank first by
  sha256(seed, task, prompt, response) -- independent of file order and process -- capped at half the
  task so training keeps the other half (logged).
- Tokens: ``prompt_template`` with ``{prompt}`` (the tokenizer's special tokens, e.g. BOS, added), then
  the response and EOS (when EOS fits the active vocabulary), truncated to ``seq_len + 1`` tokens and
  shifted: ``labels[b, t]`` is the target of ``logits[b, t]``, i.e. token t+1. Prompt targets are -100
  when ``ignore_prompt_loss``. Right padding with the pad id (EOS when the tokenizer has none),
  labels -100 and attention 0 there.
- Vocabulary: with ``enforce_full_vocab`` a tokenizer larger than ``model.vocab_size`` is an error;
  without it, examples holding a token id >= vocab_size are dropped and counted (logged).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from biollm_core.benchmarks.instruction_data import Example, assign_task_ids, read_examples
from biollm_core.errors import UserError
from biollm_core.protocols import Batch

log = logging.getLogger(__name__)
IGNORE = -100


@dataclass(frozen=True)
class EncodedSet:
    """Tokenised examples of one task split, padded to the benchmark's ``seq_len``."""

    input_ids: torch.Tensor  # (N, T) long
    labels: torch.Tensor  # (N, T) long, -100 = unsupervised
    attention_mask: torch.Tensor  # (N, T) long, 1 = real token

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def batch(self, rows: torch.Tensor | slice, task_id: int) -> Batch:
        return Batch(self.input_ids[rows], self.labels[rows], task_id, self.attention_mask[rows])


def encode_example(
    prompt_ids: Sequence[int],
    response_ids: Sequence[int],
    *,
    seq_len: int,
    pad_id: int,
    ignore_prompt_loss: bool,
) -> tuple[list[int], list[int], list[int]]:
    """One example -> (input_ids, labels, attention_mask), each of length ``seq_len``.

    ``response_ids`` already ends with EOS when EOS is used. The sequence is cut to ``seq_len + 1`` tokens;
    input t is token t and its label is token t+1, or -100 when token t+1 belongs to the prompt and
    ``ignore_prompt_loss`` is on.
    """
    tokens = (list(prompt_ids) + list(response_ids))[: seq_len + 1]
    n_inputs = max(len(tokens) - 1, 0)
    inputs = tokens[:n_inputs]
    labels = [
        tokens[t + 1] if not ignore_prompt_loss or t + 1 >= len(prompt_ids) else IGNORE
        for t in range(n_inputs)
    ]
    pad = seq_len - n_inputs
    return inputs + [pad_id] * pad, labels + [IGNORE] * pad, [1] * n_inputs + [0] * pad


class InstructionBenchmark:
    """Implements the ``ContinualBenchmark`` protocol over tokenised instruction examples."""

    def __init__(
        self,
        *,
        task_names: list[str],
        train_sets: list[EncodedSet],
        heldout_sets: list[EncodedSet],
        steps_per_task: int,
        seed: int,
        input_vocab_size: int,
        total_steps: int | None = None,
    ) -> None:
        self.task_names = task_names
        self.num_tasks = len(task_names)
        self.steps_per_task = steps_per_task
        self.total_steps = total_steps if total_steps is not None else self.num_tasks * steps_per_task
        self.input_vocab_size = input_vocab_size
        self.seed = seed
        self._train = train_sets
        self._heldout = heldout_sets

    def task_at(self, step: int) -> int:
        return min(step // self.steps_per_task, self.num_tasks - 1)

    def segment_ends(self) -> list[int]:
        """Steps after which the task changes, and the run's last step (as the toy benchmark counts them)."""
        changes = [(task + 1) * self.steps_per_task - 1 for task in range(self.num_tasks - 1)]
        return sorted({end for end in changes if end < self.total_steps - 1} | {self.total_steps - 1})

    def train_batch(self, step: int, batch_size: int) -> Batch:
        return self.task_batch(self.task_at(step), step, batch_size)

    def task_batch(self, task_id: int, index: int, batch_size: int) -> Batch:
        """Examples of a task drawn by a generator seeded with (seed, index): resume is exact."""
        examples = self._train[task_id]
        rng = np.random.default_rng([self.seed % 2**63, index])
        rows = rng.choice(len(examples), size=batch_size, replace=batch_size > len(examples))
        return examples.batch(torch.from_numpy(rows), task_id)

    def train_size(self, batch_size: int) -> int:
        return sum(len(examples) for examples in self._train)

    def heldout(self, task_id: int) -> Batch:
        return self._heldout[task_id].batch(slice(None), task_id)


def build_instruction_benchmark(
    *,
    tokenizer,
    local_path: str | None,
    dataset_name: str | None,
    dataset_split: str,
    prompt_field: str,
    response_field: str,
    task_field: str | None,
    max_examples: int | None,
    min_examples_per_task: int,
    heldout_per_task: int,
    prompt_template: str,
    ignore_prompt_loss: bool,
    enforce_full_vocab: bool,
    steps_per_task: int,
    seq_len: int,
    vocab_size: int,
    seed: int,
    total_steps: int | None = None,
) -> InstructionBenchmark:
    """Read, tokenise, split. ``tokenizer`` is a transformers tokenizer (``load_tokenizer``)."""
    if "{prompt}" not in prompt_template:
        raise UserError(f"benchmark.prompt_template={prompt_template!r} must contain '{{prompt}}'")
    if enforce_full_vocab and len(tokenizer) > vocab_size:
        raise UserError(
            f"the tokenizer has {len(tokenizer)} tokens but model.vocab_size is {vocab_size}: set "
            f"model.vocab_size={len(tokenizer)}, or benchmark.enforce_full_vocab=false to drop examples "
            f"with token ids >= {vocab_size}"
        )
    examples = read_examples(
        local_path=local_path,
        dataset_name=dataset_name,
        dataset_split=dataset_split,
        prompt_field=prompt_field,
        response_field=response_field,
        task_field=task_field,
        max_examples=max_examples,
    )
    pad_id = _pad_id(tokenizer)
    encoded, kept = _tokenize(
        examples, tokenizer, prompt_template, seq_len, vocab_size, pad_id, ignore_prompt_loss
    )
    task_ids = assign_task_ids(examples)
    names = sorted(task_ids, key=task_ids.__getitem__)
    rows_of: dict[str, list[int]] = {name: [] for name in names}  # every example's row, by task
    for i, example in enumerate(examples):
        rows_of[example.task].append(i)
    train_sets, heldout_sets = [], []
    for name in names:
        rows = [i for i in rows_of[name] if kept[i]]
        total, first = len(rows_of[name]), examples[rows_of[name][0]].source
        if len(rows) < min_examples_per_task:
            raise UserError(
                f"task {name!r} (first at {first}) has {len(rows)} usable examples of {total}; "
                f"benchmark.min_examples_per_task is {min_examples_per_task}"
            )
        train_rows, heldout_rows = _split_task(name, rows, examples, heldout_per_task, seed)
        if not train_rows or not heldout_rows:
            raise UserError(
                f"task {name!r} (first at {first}) has {len(train_rows)} train and "
                f"{len(heldout_rows)} held-out examples; it needs at least one of each"
            )
        train_sets.append(_subset(encoded, train_rows))
        heldout_sets.append(_subset(encoded, heldout_rows))
    log.info(
        "instruction benchmark: %d tasks %s, %d train / %d held-out examples",
        len(names),
        names,
        sum(map(len, train_sets)),
        sum(map(len, heldout_sets)),
    )
    return InstructionBenchmark(
        task_names=names,
        train_sets=train_sets,
        heldout_sets=heldout_sets,
        steps_per_task=steps_per_task,
        seed=seed,
        input_vocab_size=max(vocab_size, pad_id + 1),
        total_steps=total_steps,
    )


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0  # any id works: padded positions are masked out of attention and loss


def _tokenize(
    examples: list[Example],
    tokenizer,
    template: str,
    seq_len: int,
    vocab_size: int,
    pad_id: int,
    ignore_prompt_loss: bool,
) -> tuple[EncodedSet, list[bool]]:
    """All examples -> one EncodedSet, and which are usable (fit the vocabulary, supervise a token)."""
    eos = tokenizer.eos_token_id
    if eos is not None and eos >= vocab_size:
        log.warning(
            "EOS id %d does not fit model.vocab_size=%d: responses are not terminated by EOS", eos, vocab_size
        )
        eos = None
    elif eos is None:
        log.warning("the tokenizer has no EOS token: responses are not terminated by EOS")
    prompts = tokenizer([template.replace("{prompt}", e.prompt) for e in examples], add_special_tokens=True)[
        "input_ids"
    ]
    responses = tokenizer([e.response for e in examples], add_special_tokens=False)["input_ids"]
    rows = [
        encode_example(
            prompt_ids,
            response_ids + ([eos] if eos is not None else []),
            seq_len=seq_len,
            pad_id=pad_id,
            ignore_prompt_loss=ignore_prompt_loss,
        )
        for prompt_ids, response_ids in zip(prompts, responses, strict=True)
    ]
    inputs, labels, masks = (torch.tensor(column) for column in zip(*rows, strict=True))  # (N, T) each
    fits = ((inputs < vocab_size) | (masks == 0)).all(1) & ((labels < vocab_size) | (labels == IGNORE)).all(1)
    supervised = (labels != IGNORE).any(1)
    if out_of_vocab := int((~fits).sum()):
        log.warning(
            "dropped %d of %d examples holding token ids >= model.vocab_size=%d",
            out_of_vocab,
            len(examples),
            vocab_size,
        )
    if unsupervised := int((fits & ~supervised).sum()):
        log.warning(
            "dropped %d examples whose response was truncated away by benchmark.seq_len=%d",
            unsupervised,
            seq_len,
        )
    return EncodedSet(inputs, labels, masks), (fits & supervised).tolist()


def _split_task(
    name: str, rows: list[int], examples: list[Example], heldout_per_task: int, seed: int
) -> tuple[list[int], list[int]]:
    """(train rows, held-out rows) of one task: its "eval" examples, else a seeded draw."""
    eval_rows = [i for i in rows if examples[i].split == "eval"]
    if eval_rows:
        return [i for i in rows if examples[i].split != "eval"], eval_rows[:heldout_per_task]
    count = min(heldout_per_task, len(rows) // 2)
    if count < heldout_per_task:
        log.warning(
            "task %r has %d examples: holding out %d, not benchmark.heldout_per_task=%d",
            name,
            len(rows),
            count,
            heldout_per_task,
        )

    # Rank by a seeded hash of the content, not by position: the same examples in another order (or
    # another process) give the same held-out set.
    def rank(i: int) -> bytes:
        return hashlib.sha256(
            f"{seed}\0{name}\0{examples[i].prompt}\0{examples[i].response}".encode()
        ).digest()

    held = sorted(sorted(rows, key=rank)[:count])
    held_set = set(held)
    return [i for i in rows if i not in held_set], held


def _subset(encoded: EncodedSet, rows: list[int]) -> EncodedSet:
    index = torch.tensor(rows, dtype=torch.long)
    return EncodedSet(encoded.input_ids[index], encoded.labels[index], encoded.attention_mask[index])
