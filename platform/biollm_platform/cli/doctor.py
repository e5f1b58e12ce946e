"""`biollm doctor`: what this machine offers a run — Python, torch and its devices, Ray, W&B, Hugging Face."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from biollm_platform import doctor as checks


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def report_table(report: dict[str, Any]) -> Table:
    table = Table(title="biollm doctor", show_header=False)
    table.add_column("check", style="bold")
    table.add_column("result")
    py, tr, ray, wb, hf = (report[k] for k in ("python", "torch", "ray", "wandb", "huggingface"))
    table.add_row("python", f"{py['version']} ({py['executable']}), {py['cpu_count']} CPUs")
    build = tr["cuda_built"] or "none"
    table.add_row("torch", f"{tr['version']} (CUDA build {build}), {tr['cpu_threads']} threads, default device {tr['default_device']}")
    table.add_row("cuda", "available" if tr["cuda_available"] else "not available")
    for d in tr["cuda_devices"]:
        memory = f"{_gib(d['free_memory_bytes'])} free of {_gib(d['total_memory_bytes'])}"
        table.add_row(f"  cuda:{d['index']}", f"{d['name']} (sm {d['capability']}), {memory}")
    table.add_row("bf16 (cuda)", "supported" if tr["cuda_bf16_supported"] else "no")
    table.add_row("mps", "available" if tr["mps_available"] else ("built, not available" if tr["mps_built"] else "not built"))
    cluster = ray["cluster"]
    table.add_row("ray", ray["version"] or "not installed")
    if not cluster["checked"]:
        table.add_row("ray cluster", cluster["note"])
    elif cluster["reachable"]:
        text = f"{cluster['address']} reachable ({cluster.get('kind')}, {cluster['elapsed_s']} s)"
        if cluster.get("resolved_from"):
            text = f"auto -> {text}"
        if cluster.get("ray_version"):
            text += f", Ray {cluster['ray_version']}"
        if cluster.get("resources"):
            text += ", " + ", ".join(f"{k} {v['used']:g}/{v['total']:g}" for k, v in cluster["resources"].items())
        table.add_row("ray cluster", text)
    else:
        table.add_row("ray cluster", f"[red]{cluster['address']} unreachable[/]: {cluster.get('error')}")
    table.add_row("wandb", f"{wb['version'] or 'not installed'}, mode {wb['mode']}, API key "
                  + (f"set ({wb['api_key_source']})" if wb["api_key_set"] else "not set"))
    table.add_row("huggingface", f"cache {hf['hub_cache']} ({len(hf['cached_repos'])} repos)"
                  + (", offline" if hf["offline"] else ", online") + f", transformers {hf['transformers_version'] or 'not installed'}")
    return table


def doctor(
    address: Annotated[str | None, typer.Option(
        "--address", help="Ray cluster to check: dashboard http://host:8265, host:port, or auto (default: env RAY_ADDRESS).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    require_cuda: Annotated[bool, typer.Option("--require-cuda", help="Exit with code 1 when no CUDA device is available.")] = False,
) -> None:
    """Check this machine: Python, torch, CUDA/MPS devices and memory, bf16, Ray and a cluster, W&B, HF cache."""
    report = checks.collect(address or os.environ.get("RAY_ADDRESS") or None)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        Console().print(report_table(report))
    if require_cuda and not report["torch"]["cuda_available"]:
        if not as_json:
            Console(stderr=True).print("[bold red]error:[/] --require-cuda: no CUDA device is available")
        raise typer.Exit(code=1)
