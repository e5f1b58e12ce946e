"""`biollm bench`: performance measurements (`engine`: the CLS engine against plain fine-tuning;
`sweep`: a Ray sweep against one `biollm train` after another)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from biollm_platform.cli.config_cmd import Files, Overrides
from biollm_platform.cli.sweep import Executor

# torch, the engine and Ray are imported by the command that runs, not when the CLI starts.

app = typer.Typer(help="Measure what the engine and the Ray sweep cost (times, throughput, memory).", no_args_is_help=True)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


def engine_table(result: dict) -> Table:
    table = Table(title=f"{result['method']} on {result['device']} ({result['torch_threads']} threads, "
                        f"median of {result['repeats']} after {result['warmup']} warm-up)")
    table.add_column("step")
    table.add_column("median ms", justify="right")
    table.add_column("tokens/s", justify="right")
    table.add_column("x plain", justify="right")
    step = "wake step" if "wake_ratio" in result else f"{result['method']} step"
    rows = [
        (f"plain fine-tuning (batch {result['batch_size']} x {result['seq_len']})", "plain_step_ms", "plain_tokens_per_s", 1.0),
        (step, "step_ms", "step_tokens_per_s", result["step_ratio"]),
    ]
    if "sleep_ratio" in result:
        rows += [
            ("sleep step (same batch)", "sleep_step_ms", "sleep_tokens_per_s", result["sleep_ratio"]),
            (f"sleep step (replay batch {result['replay_batch_size']})", "sleep_replay_batch_step_ms",
             "sleep_replay_batch_tokens_per_s", None),
        ]
    rows.append((f"evaluation pass (median of {result['eval_repeats']})", "eval_pass_ms", "eval_tokens_per_s", None))
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
    """Time plain fine-tuning, the method's step (`method=X`; cls: the wake step and the sleep step) and
    evaluation on the same batches. The sleep steps are timed after all the wake steps, so those follow
    one another as in a run between two sleeps."""
    import torch

    from biollm_core.config.loader import load_config
    from biollm_platform.bench.engine import bench_engine

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
    ratios = [f"{'wake' if 'wake_ratio' in result else 'step'}/plain {result['step_ratio']:.2f}x"]
    if "sleep_ratio" in result:
        ratios.append(f"sleep/plain {result['sleep_ratio']:.2f}x")
    console.print("   ".join([*ratios, f"evaluation per step (every {config.train.eval_interval}) {result['eval_ms_per_step']:.2f} ms"]))
    if "wake_experts_used" in result:
        console.print(f"wake steps routed their batch to a median of {result['wake_experts_used']:g} of "
                      f"{result['num_experts']} experts")
    if "replay_bytes" in result:
        console.print(f"replay buffer: {_bytes(result['replay_bytes_per_episode'])} per episode, "
                      f"{_bytes(result['replay_bytes'])} at capacity {result['replay_capacity']}")
    console.print(f"memory kept: {result['memory_episodes']} episodes, {_bytes(result['memory_bytes'])}; "
                  f"trainable parameters {result['trainable_params']:,}")
    kind = "CUDA max allocated" if result["peak_memory_kind"] == "cuda_max_memory_allocated" else "process peak RSS"
    console.print(f"peak memory ({kind}): {_bytes(result['peak_memory_bytes'])}")


app.command("engine")(engine)


def ddp_table(result: dict) -> Table:
    sizes = result["world_sizes"]
    first = next(iter(sizes.values()))
    table = Table(title=f"data parallel on {first['device']} ({result['backend']}, {result['threads']} thread(s) a rank, "
                        f"median of {result['steps']} steps after {result['warmup']})")
    for column in ("ranks", "step ms", "steps/s", "tokens/s", "x W=1", "comm ms/step", "sleep step ms", "sleep tokens/s", "x W=1 "):
        table.add_column(column, justify="right")
    base = sizes["1"]
    for size, fig in sizes.items():
        sleep = ("-", "-", "-")
        if "sleep_step_ms" in fig:
            ratio = fig["sleep_tokens_per_s"] / base["sleep_tokens_per_s"]
            sleep = (f"{fig['sleep_step_ms']:.2f}", f"{fig['sleep_tokens_per_s']:,.0f}", f"{ratio:.2f}")
        table.add_row(size, f"{fig['step_ms']:.2f}", f"{fig['steps_per_s']:.1f}", f"{fig['tokens_per_s']:,.0f}",
                      f"{fig['tokens_per_s'] / base['tokens_per_s']:.2f}", f"{fig['comm_ms']:.2f}", *sleep)
    return table


def ddp(
    overrides: Overrides = None,
    workers: Annotated[int, typer.Option("--workers", min=2, help="Ranks to compare with one.")] = 2,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Timed steps per rank (medians are reported).")] = 30,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed steps first.")] = 5,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads per rank.")] = 1,
    backend: Annotated[str, typer.Option("--backend", help="gloo (CPU) or nccl (one GPU a rank).")] = "gloo",
    compare_ddp: Annotated[bool, typer.Option("--compare-ddp", help="Also time torch DDP against the engine's all-reduce.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Steps/s, tokens/s and communication time per step at W = 1 and W = --workers (local processes,
    a torch.distributed group without Ray), the method's training step and, for cls, its sleep step."""
    from biollm_platform.bench.ddp import bench_ddp

    result = bench_ddp(list(overrides or []), workers=workers, steps=steps, warmup=warmup, threads=threads,
                       backend=backend, compare_ddp=compare_ddp)
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = Console()
    console.print(ddp_table(result))
    line = f"W={workers} / W=1: tokens/s {result['tokens_per_s_ratio']:.2f}x"
    if "sleep_tokens_per_s_ratio" in result:
        line += f", sleep tokens/s {result['sleep_tokens_per_s_ratio']:.2f}x"
    console.print(line)
    if "ddp" in result:
        d = result["ddp"]
        console.print(f"fine-tuning step at W={workers}: explicit all-reduce {d['allreduce_step_ms']:.2f} ms, "
                      f"torch DDP {d['ddp_step_ms']:.2f} ms ({d['ddp_step_ms'] / d['allreduce_step_ms']:.2f}x)")


app.command("ddp")(ddp)


def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="The sweep YAML (see `biollm sweep schema`).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Run-config overrides for every trial (`train.max_steps=200`).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray to join (GCS address or `auto`); default: start a local one.")
    ] = None,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Keep both runs' artifacts in this (empty) directory.")
    ] = None,
    executor: Annotated[
        Executor | None,
        typer.Option(help="Override the file's `resources.executor` (train_workers or train_local) for (b)."),
    ] = None,
) -> None:
    """Run SWEEP_FILE's trials one `biollm train` after another, then as a Ray sweep; compare wall times.

    Prints both wall times and their ratio (Ray / sequential).

    Ray's fixed cost per trial: trial start to the end of the first engine step, plus last step to trial end.

    Also the time the engine waited in Ray's report calls, and the bound: the ratio with no fixed cost at all.
    """
    from biollm_platform.bench.sweep import bench_sweep

    console = Console(stderr=True, highlight=False)
    result = bench_sweep(
        sweep_file, tuple(overrides or []), address=address, keep=keep, executor=executor,
        log=lambda line: console.print(line, markup=False),
    )
    if as_json:
        typer.echo(json.dumps(result))
        return
    out = Console(highlight=False)
    out.print(f"{result['trials']} trials on {result['cpus']} CPUs")
    out.print(f"(a) sequential `biollm train`: {result['sequential_s']:.1f} s")
    out.print(f"(b) Ray sweep ({result['executor']}): {result['ray_s']:.1f} s "
              f"(Ray start {result['ray_startup_s']:.1f} s)")
    out.print(f"ratio (b)/(a): {result['ratio']:.2f}")
    out.print(f"Ray fixed cost per trial: mean {result['ray_fixed_cost_per_trial_s']:.1f} s "
              f"(start->first step {result['ray_fixed_cost_start_s']:.1f} s, "
              f"last step->end {result['ray_fixed_cost_end_s']:.1f} s), "
              f"max {result['ray_fixed_cost_per_trial_max_s']:.1f} s")
    out.print(f"engine waiting in Ray's report calls: {result['ray_report_s']:.1f} s per trial")
    out.print(f"bound: the engine steps alone, {result['ray_concurrent_trials']} trials at once, take "
              f"{result['ray_wall_bound_s']:.1f} s = {result['ratio_bound']:.2f} x sequential")


app.command("sweep")(sweep)


def startup(
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Runs of each command (the median is reported).")] = 5,
    with_uv: Annotated[bool, typer.Option("--uv", help="Also time `uv run biollm --help` (uv's own start on top).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Time `biollm --help` and `biollm sweep list` in fresh processes against `python -c pass`.

    Medians of REPEATS subprocess runs each, and each one's ratio to `python -c pass` timed the same way.
    """
    from biollm_platform.bench.startup import bench_startup

    result = bench_startup(repeats, with_uv=with_uv)
    if as_json:
        typer.echo(json.dumps(result))
        return
    out = Console(highlight=False)
    out.print(f"median of {repeats} runs of `{result['command']} ...` (fresh processes)")
    out.print(f"python -c pass          {result['python_pass_s']:.3f} s")
    for name, label in (("help", "biollm --help"), ("sweep_list", "biollm sweep list"), ("version", "biollm --version"),
                        ("uv_run_help", "uv run biollm --help")):
        if f"{name}_s" not in result:
            continue
        target = result["targets_s"].get(name)
        verdict = "" if target is None else f"   target <= {target} s: {'met' if result['targets_met'][name] else 'MISSED'}"
        out.print(f"{label:<23} {result[f'{name}_s']:.3f} s  ({result[f'{name}_ratio']:.1f} x python -c pass){verdict}")
    if "uv_run_overhead_s" in result:
        out.print(f"uv run adds             {result['uv_run_overhead_s']:.3f} s")


app.command("startup")(startup)
