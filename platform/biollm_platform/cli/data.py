"""`biollm data ...`: make data sets for local experiments."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from biollm_platform.data.make_instructions import OUTPUT_NAME, TASKS, make_instructions, write_instructions

app = typer.Typer(help="Make data sets for local experiments.", no_args_is_help=True)


@app.callback()
def data() -> None:
    """Make data sets for local experiments."""  # a callback keeps `data` a group with one command


@app.command("make-instructions")
def make_instructions_command(
    out: Annotated[
        Path, typer.Option("--out", help=f"Directory to write {OUTPUT_NAME} into (created if missing).")
    ],
    per_task: Annotated[int, typer.Option("--per-task", min=1, help="Train examples per task.")] = 256,
    eval_per_task: Annotated[
        int, typer.Option("--eval-per-task", min=1, help="Eval examples per task.")
    ] = 32,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed writes the same file.")] = 0,
) -> None:
    """Write a synthetic continual instruction stream of eight tasks to DIR/instructions.jsonl.

    Tasks: sort, reverse, arithmetic, word_count, vowel_count, uppercase, last_token, parity.

    Eval examples ("split": "eval") are the held-out sets: their numbers and words are in no train prompt.

    Train on it with: benchmark=instruction benchmark.local_path=DIR/instructions.jsonl
    """
    examples = make_instructions(per_task, eval_per_task, seed)
    path = write_instructions(out, examples)
    counts = Counter((e["task"], e["split"]) for e in examples)
    typer.echo(f"wrote {path} ({sum(counts.values())} examples, seed {seed})")
    for task in TASKS:
        typer.echo(f"  {task:<12} train {counts[(task, 'train')]:>5}  eval {counts[(task, 'eval')]:>4}")
