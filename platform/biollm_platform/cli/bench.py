"""`biollm bench`: performance measurements (`engine`: the CLS engine against plain fine-tuning)."""

from __future__ import annotations

import json
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from biollm_core.config.loader import load_config
from biollm_platform.bench.engine import bench_engine
from biollm_platform.cli.config_cmd import Files, Overrides

app = typer.Typer(help="Measure what the engine costs (times, throughput, memory).", no_args_is_help=True)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


def engine_table(result: dict) -> Table:
    table = Table(title=f"engine on {result['device']} ({result['torch_threads']} threads, median of {result['repeats']} "
                        f"after {result['warmup']} warm-up)")
    table.add_column("step")
    table.add_column("median ms", justify="right")
    table.add_column("tokens/s", justify="right")
    table.add_column("x plain", justify="right")
    rows = (
        (f"plain fine-tuning (batch {result['batch_size']} x {result['seq_len']})", "plain_step_ms", "plain_tokens_per_s", 1.0),
        ("wake step", "wake_step_ms", "wake_tokens_per_s", result["wake_ratio"]),
        ("sleep step (same batch)", "sleep_step_ms", "sleep_tokens_per_s", result["sleep_ratio"]),
        (f"sleep step (replay batch {result['replay_batch_size']})", "sleep_replay_batch_step_ms", "sleep_replay_batch_tokens_per_s", None),
        (f"evaluation pass (median of {result['eval_repeats']})", "eval_pass_ms", "eval_tokens_per_s", None),
    )
    for label, ms, tps, ratio in rows:
        table.add_row(label, f"{result[ms]:.2f}", f"{result[tps]:,.0f}", "-" if ratio is None else f"{ratio:.2f}")
    return table


def engine(
    overrides: Overrides = None,
    files: Files = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed repeats per step (medians are reported).")] = 10,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed repeats first.")] = 3,
    eval_repeats: Annotated[int, typer.Option("--eval-repeats", min=1, help="Timed evaluation passes (after one untimed).")] = 3,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="torch.set_num_threads (default: torch's choice).")] = None,
) -> None:
    """Time plain fine-tuning, the wake step, the sleep step and evaluation on the same batches."""
    config = load_config(overrides or [], files or [])
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        result = bench_engine(config, repeats=repeats, warmup=warmup, eval_repeats=eval_repeats)
    finally:
        torch.set_num_threads(previous)  # callers in the same process (tests) keep their setting
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = Console()
    console.print(engine_table(result))
    console.print(f"wake/plain {result['wake_ratio']:.2f}x   sleep/plain {result['sleep_ratio']:.2f}x   "
                  f"evaluation per wake step (every {config.train.eval_interval}) {result['eval_ms_per_wake_step']:.2f} ms")
    console.print(f"replay buffer: {_bytes(result['replay_bytes_per_episode'])} per episode, "
                  f"{_bytes(result['replay_bytes'])} at capacity {result['replay_capacity']}")
    kind = "CUDA max allocated" if result["peak_memory_kind"] == "cuda_max_memory_allocated" else "process peak RSS"
    console.print(f"peak memory ({kind}): {_bytes(result['peak_memory_bytes'])}")


app.command("engine")(engine)
