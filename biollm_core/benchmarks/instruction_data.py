"""Reading instruction examples: local ``.jsonl``/``.json`` files or a Hugging Face dataset.

Every example remembers where it came from (``file:line`` or ``dataset[split] row i``) so that bad
data is reported at its place. Task ids are assigned later (``assign_task_ids``): sorted unique task
names -> 0..n-1, so they are the same in every process and on every machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biollm_core.errors import UserError

SPLIT_KEY = "split"  # optional per-example field: "train" or "eval" (the eval examples form the held-out set)
SPLITS = ("train", "eval")
DEFAULT_TASK = "default"  # the one task when benchmark.task_field is null


@dataclass(frozen=True)
class Example:
    prompt: str
    response: str
    task: str
    split: str | None  # "train", "eval" or None (held-out examples are then drawn per task)
    source: str  # where it was read: "path:line" or "dataset[split] row i"


def read_examples(
    *,
    local_path: str | None,
    dataset_name: str | None,
    dataset_split: str,
    prompt_field: str,
    response_field: str,
    task_field: str | None,
    max_examples: int | None,
) -> list[Example]:
    """Read at most ``max_examples`` examples (in file order) from ``local_path`` or ``dataset_name``."""
    if local_path:
        records = _local_records(Path(local_path).expanduser())
    elif dataset_name:
        records = _hub_records(dataset_name, dataset_split)
    else:
        raise UserError(
            "benchmark=instruction needs benchmark.local_path (a .jsonl/.json file) or benchmark.dataset_name"
        )
    examples: list[Example] = []
    for source, record in records:
        if max_examples is not None and len(examples) >= max_examples:
            break
        examples.append(_to_example(source, record, prompt_field, response_field, task_field))
    if not examples:
        raise UserError(
            f"{local_path or dataset_name}: no examples found (expected at least one prompt/response object)"
        )
    return examples


def assign_task_ids(examples: Iterable[Example]) -> dict[str, int]:
    """Stable task ids: sorted unique task names -> 0..n-1 (never Python's salted ``hash``)."""
    return {name: i for i, name in enumerate(sorted({example.task for example in examples}))}


def _to_example(
    source: str, record: Any, prompt_field: str, response_field: str, task_field: str | None
) -> Example:
    if not isinstance(record, Mapping):
        raise UserError(
            f"{source}: expected a JSON object with prompt/response fields, got {type(record).__name__}"
        )
    prompt = _text_field(source, record, prompt_field, "benchmark.prompt_field")
    response = _text_field(source, record, response_field, "benchmark.response_field")
    task = (
        DEFAULT_TASK
        if task_field is None
        else _text_field(source, record, task_field, "benchmark.task_field")
    )
    if not task.strip():
        raise UserError(f"{source}: empty task name in field {task_field!r} (benchmark.task_field)")
    if not response:
        raise UserError(f"{source}: empty response in field {response_field!r}: nothing to learn")
    split = record.get(SPLIT_KEY)
    if split is not None and split not in SPLITS:
        raise UserError(
            f"{source}: field {SPLIT_KEY!r} is {split!r}; expected one of {list(SPLITS)} or no such field"
        )
    return Example(prompt=prompt, response=response, task=task.strip(), split=split, source=source)


def _text_field(source: str, record: Mapping[str, Any], field: str, key: str) -> str:
    if field not in record:
        raise UserError(f"{source}: missing field {field!r} ({key}); the object has fields {sorted(record)}")
    value = record[field]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise UserError(f"{source}: field {field!r} ({key}) is {type(value).__name__}; expected a string")
    return value


def _local_records(path: Path) -> Iterator[tuple[str, Any]]:
    if not path.is_file():
        raise UserError(f"benchmark.local_path: {path} does not exist or is not a file")
    if path.suffix == ".jsonl":
        return _jsonl_records(path)
    if path.suffix == ".json":
        return _json_array_records(path)
    raise UserError(f"benchmark.local_path: {path} has suffix {path.suffix!r}; expected .jsonl or .json")


def _not_text(path: Path, error: UnicodeDecodeError, line: int | None = None) -> UserError:
    where = f"{path}:{line}" if line else str(path)
    return UserError(f"{where}: not a UTF-8 text file (byte {error.start} of {'that line' if line else 'the file'}); "
                     "expected JSON instruction records")


def _jsonl_records(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _not_text(path, error, number) from None
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(
                    f"{path}:{number}: malformed JSON ({error.msg} at column {error.colno}); "
                    "expected one object per line"
                ) from None


def _json_array_records(path: Path) -> Iterator[tuple[str, Any]]:
    """The elements of a top-level JSON array, each with the line it starts on."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise _not_text(path, error) from None
    decoder = json.JSONDecoder()

    def line_of(index: int) -> int:
        return text.count("\n", 0, index) + 1

    def skip_space(index: int) -> int:
        while index < len(text) and text[index] in " \t\r\n":
            index += 1
        return index

    def malformed(index: int, what: str) -> UserError:
        return UserError(f"{path}:{line_of(index)}: malformed JSON ({what}); expected a list of objects")

    index = skip_space(0)
    if index >= len(text) or text[index] != "[":
        raise malformed(index, "the file does not start with '['")
    index = skip_space(index + 1)
    if index < len(text) and text[index] == "]":
        return
    while True:
        try:
            record, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as error:
            raise UserError(
                f"{path}:{error.lineno}: malformed JSON ({error.msg} at column {error.colno})"
            ) from None
        yield f"{path}:{line_of(index)}", record
        index = skip_space(end)
        if index < len(text) and text[index] == "]":
            return
        if index >= len(text) or text[index] != ",":
            raise malformed(index, "expected ',' or ']' after an element")
        index = skip_space(index + 1)


def _hub_records(dataset_name: str, split: str) -> Iterator[tuple[str, Any]]:
    import datasets  # imported here: only the hub path needs it, and it is slow to import

    try:
        rows = datasets.load_dataset(dataset_name, split=split)
    except Exception as error:  # noqa: BLE001 -- datasets raises many types; the user needs the message
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"benchmark.dataset_name={dataset_name!r} (split {split!r}): cannot load: {first_line}"
        ) from None
    for i, row in enumerate(rows):
        yield f"{dataset_name}[{split}] row {i}", row
