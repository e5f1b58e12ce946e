"""`biollm data ...`: make data sets for local experiments."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from biollm_core.errors import UserError
from biollm_platform.data.make_instructions import OUTPUT_NAME, TASKS, make_instructions, write_instructions
from biollm_platform.data.tiny_lm import DEFAULT_HEADS, MIN_VOCAB, Architecture, make_tiny_lm  # torch etc. on use

app = typer.Typer(help="Make data sets for local experiments.", no_args_is_help=True)


@app.callback()
def data() -> None:
    """Make data sets for local experiments."""  # a callback keeps `data` a group even with one command


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
    tasks: Annotated[
        str | None,
        typer.Option("--tasks", help="The task mix and its order, comma-separated (default: all eight in the order below)."),
    ] = None,
) -> None:
    """Write a synthetic continual instruction stream of eight tasks to DIR/instructions.jsonl.

    Tasks: sort, reverse, arithmetic, word_count, vowel_count, uppercase, last_token, parity.

    Eval examples ("split": "eval") are the held-out sets: their numbers and words are in no train prompt.

    Train on it with: benchmark=instruction benchmark.local_path=DIR/instructions.jsonl
    """
    chosen = None if tasks is None else [t.strip() for t in tasks.split(",") if t.strip()]
    try:
        examples = make_instructions(per_task, eval_per_task, seed, chosen)
    except ValueError as error:
        raise UserError(f"--tasks: {error}") from None
    path = write_instructions(out, examples)
    counts = Counter((e["task"], e["split"]) for e in examples)
    typer.echo(f"wrote {path} ({sum(counts.values())} examples, seed {seed})")
    for task in chosen or TASKS:
        typer.echo(f"  {task:<12} train {counts[(task, 'train')]:>5}  eval {counts[(task, 'eval')]:>4}")


@app.command("make-tiny-lm")
def make_tiny_lm_command(
    data: Annotated[
        Path, typer.Option("--data", help="Instruction JSONL/JSON to train the tokenizer on (make-instructions' file).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the model + tokenizer (missing, empty or an earlier output).")
    ],
    arch: Annotated[Architecture, typer.Option("--arch", help="Architecture.")] = "gpt2",
    vocab: Annotated[
        int, typer.Option("--vocab", min=MIN_VOCAB, help="Tokenizer size to train (fewer when the data runs out of merges).")
    ] = 384,
    layers: Annotated[int, typer.Option("--layers", min=1, help="Decoder layers.")] = 4,
    width: Annotated[int, typer.Option("--width", min=2, help="Hidden size.")] = 64,
    heads: Annotated[
        int | None,
        typer.Option(
            "--heads",
            min=1,
            help=f"Attention heads (default {DEFAULT_HEADS['gpt2']} for gpt2, "
            f"{DEFAULT_HEADS['qwen2']} for qwen2; qwen2 gets heads/2 KV heads).",
        ),
    ] = None,
    max_positions: Annotated[
        int, typer.Option("--max-positions", min=2, help="Longest sequence; keep benchmark.seq_len below it.")
    ] = 128,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights.")] = 0,
    prompt_field: Annotated[str, typer.Option("--prompt-field", help="Field holding the prompt.")] = "prompt",
    response_field: Annotated[str, typer.Option("--response-field", help="Field holding the response.")] = "response",
) -> None:
    """Make a tiny random GPT-2/Qwen2 and a BPE tokenizer trained on DATA, saved with save_pretrained in OUT.

    Runs fully offline. Train on it with:
    model=hf_causal_lm model.hf_model_name=OUT model.hf_local_files_only=true model.vocab_size=<printed size>
    """
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a one-shard "Writing model shards" bar says nothing here
    info = make_tiny_lm(
        data,
        out,
        arch=arch,
        vocab_size=vocab,
        layers=layers,
        width=width,
        heads=heads,
        max_positions=max_positions,
        seed=seed,
        prompt_field=prompt_field,
        response_field=response_field,
    )
    typer.echo(
        f"wrote {out}: {info.arch}, {info.layers} layers x width {info.width}, {info.heads} heads, "
        f"{info.max_positions} positions, {info.parameters:,} parameters, seed {info.seed}"
    )
    shortfall = f" (asked for {info.requested_vocab_size}: the data ran out of merges)" if info.vocab_size < vocab else ""
    typer.echo(f"tokenizer: {info.vocab_size} tokens{shortfall}, trained on {info.texts} texts of {data}")
    typer.echo(
        f"use: model=hf_causal_lm model.hf_model_name={out} model.hf_local_files_only=true "
        f"model.vocab_size={info.vocab_size}"
    )
