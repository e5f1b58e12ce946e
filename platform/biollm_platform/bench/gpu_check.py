"""One prepared GPU check: the engine on CUDA with AMP, at the rtx4070 toy size and on a GPT-2-sized model.

``python -m biollm_platform.bench.gpu_check [--out FILE]`` (or ``biollm bench gpu``) prints one JSON
object: for each case, ``biollm bench engine``'s figures (median ms, tokens/s, ratios, peak memory).
The GPT-2-sized neocortex (12 layers, width 768, 12 heads; vocabulary 1024) is built from a config and
loaded back through ``from_pretrained(path)``, so the Hugging Face path is the real one without the hub.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from biollm_core.config.loader import load_config
from biollm_platform.bench.engine import bench_engine

KEYS = ("plain_step_ms", "wake_step_ms", "sleep_step_ms", "wake_ratio", "sleep_ratio", "replay_bytes_per_episode",
        "peak_memory_bytes", "wake_tokens_per_s", "plain_tokens_per_s", "sleep_tokens_per_s")


def save_gpt2_sized(path: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=1024, n_positions=256, n_embd=768, n_layer=12, n_head=12)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


def cases(model_dir: Path) -> dict[str, list[str]]:
    gpt2 = ["model=hf_causal_lm", f"model.hf_model_name={model_dir}", "model.hf_local_files_only=true",
            "model.vocab_size=1000", "benchmark=toy", "benchmark.seq_len=128", "train.batch_size=16",
            "replay.batch_size=16", "device=cuda"]
    return {
        "rtx4070_toy_fp16": ["train=rtx4070", "device=cuda"],
        "gpt2_sized_fp32": [*gpt2, "train.amp_enabled=false"],
        "gpt2_sized_fp16": [*gpt2, "train.amp_enabled=true", "train.amp_dtype=fp16"],
        "gpt2_sized_bf16": [*gpt2, "train.amp_enabled=true", "train.amp_dtype=bf16"],
    }


def run(repeats: int, warmup: int) -> dict[str, Any]:
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check needs CUDA")
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_gpt2_sized(Path(tmp) / "gpt2-sized")
        for name, overrides in cases(model_dir).items():
            figures = bench_engine(load_config(overrides), repeats=repeats, warmup=warmup, eval_repeats=1)
            report[name] = {k: figures.get(k) for k in KEYS if k in figures} | {"overrides": overrides}
            print(name, json.dumps(report[name]), file=sys.stderr, flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = run(args.repeats, args.warmup)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
