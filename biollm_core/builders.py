"""Builders: map config sections to flat keyword arguments. Modules never receive a whole config."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch

from biollm_core.benchmarks.toy import ToyBenchmark
from biollm_core.config.schema import CLASSIFICATION_BENCHMARKS, RunConfig
from biollm_core.device import Precision, configure_precision, maybe_compile
from biollm_core.distributed import SINGLE, Distributed
from biollm_core.errors import UserError
from biollm_core.hippocampus import Hippocampus
from biollm_core.models.tiny_transformer import TinyTransformer
from biollm_core.protocols import ContinualBenchmark, FeatureBenchmark, Neocortex
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.sleep import SleepSettings
from biollm_core.sleep_pressure import SleepScheduler


def build_benchmark(cfg: RunConfig) -> ContinualBenchmark:
    b = cfg.benchmark
    if b.name == "toy":
        total = cfg.train.max_steps
        return ToyBenchmark(
            vocab_size=cfg.model.vocab_size, seq_len=b.seq_len, num_tasks=b.num_tasks, switch_every=b.switch_every,
            schedule=b.schedule, heldout_size=b.heldout_size, task_cue=b.task_cue, seed=cfg.seed, total_steps=total,
        )
    if b.name in CLASSIFICATION_BENCHMARKS:
        return build_classification_benchmark(cfg)
    from biollm_core.benchmarks.instruction import build_instruction_benchmark  # transformers is heavy: lazy
    from biollm_core.models.hf_causal_lm import load_tokenizer

    m = cfg.model
    if b.tokenizer_name is None and m.provider == "tiny":
        raise UserError("benchmark=instruction with model.provider=tiny needs benchmark.tokenizer_name")
    tokenizer = load_tokenizer(
        b.tokenizer_name or m.hf_model_name, local_files_only=m.hf_local_files_only,
        revision=None if b.tokenizer_name else m.hf_revision, trust_remote_code=m.hf_trust_remote_code,
    )
    return build_instruction_benchmark(
        tokenizer=tokenizer, local_path=b.local_path, dataset_name=b.dataset_name, dataset_split=b.dataset_split,
        prompt_field=b.prompt_field, response_field=b.response_field, task_field=b.task_field,
        max_examples=b.max_examples, min_examples_per_task=b.min_examples_per_task,
        heldout_per_task=b.heldout_per_task, prompt_template=b.prompt_template,
        ignore_prompt_loss=b.ignore_prompt_loss, enforce_full_vocab=b.enforce_full_vocab,
        steps_per_task=b.steps_per_task, seq_len=b.seq_len, vocab_size=m.vocab_size, seed=cfg.seed,
        total_steps=cfg.train.max_steps,
    )


def build_classification_benchmark(cfg: RunConfig) -> FeatureBenchmark:
    from biollm_core.benchmarks import classification
    from biollm_core.benchmarks.classification_data import load_source

    b = cfg.benchmark
    shared = dict(scenario=b.scenario, epochs_per_task=b.epochs_per_task, heldout_fraction=b.heldout_fraction,
                  heldout_seed=b.heldout_seed, batch_size=cfg.train.batch_size, seed=cfg.seed, total_steps=cfg.train.max_steps)
    data = load_source(b.source, b.path)
    if b.name == "split_classification":
        return classification.build_split_classification(data=data, classes_per_task=b.classes_per_task, num_tasks=b.num_tasks,
                                                         class_order=b.class_order, **shared)
    return classification.build_permuted_classification(data=data, num_tasks=b.num_tasks, **shared)


def fit_to_benchmark(cfg: RunConfig, bench: ContinualBenchmark) -> RunConfig:
    """The config with the MLP's input width, heads and classes per head taken from a feature benchmark
    where they are null (a value that is set must agree). Other configs are returned unchanged."""
    m = cfg.model
    if m.provider != "mlp":
        return cfg
    sizes = {"mlp_input_dim": bench.input_dim, "mlp_output_heads": bench.num_heads, "vocab_size": bench.num_classes}
    for key, value in sizes.items():
        given = getattr(m, key)
        if given is not None and given != value:
            raise UserError(f"model.{key}={given}, but benchmark {cfg.benchmark.name} ({cfg.benchmark.scenario}-incremental) "
                            f"needs {value}: leave it null to take the benchmark's")
    return cfg.model_copy(update={"model": m.model_copy(update=sizes)})


def build_precision(cfg: RunConfig, device: torch.device) -> Precision:
    t = cfg.train
    return configure_precision(
        device, amp_enabled=t.amp_enabled, amp_dtype=t.amp_dtype, allow_tf32=t.allow_tf32,
        matmul_precision=t.matmul_precision, deterministic=cfg.repro.deterministic, cudnn_benchmark=cfg.repro.cudnn_benchmark,
    )


def build_device_neocortex(cfg: RunConfig, input_vocab_size: int, device: torch.device, precision: Precision) -> Neocortex:
    """The neocortex on ``device``, frozen, its two halves compiled when ``train.compile`` is on."""
    neocortex = build_neocortex(cfg, input_vocab_size).to(device)
    neocortex.requires_grad_(False)
    if cfg.train.compile:  # the module keeps its parameters and state_dict; only the two halves are compiled
        compile_halves(neocortex, device, precision.notes)
    return neocortex


def compile_halves(neocortex: Neocortex, device: torch.device, notes: list[str]) -> None:
    """Replace ``encode`` and ``decode`` by compiled versions bound to this module (instance attributes)."""
    for name in ("encode", "decode"):
        setattr(neocortex, name, maybe_compile(getattr(neocortex, name), True, device, notes))


def copy_neocortex(neocortex: Neocortex, *, compile_on: torch.device | None = None, notes: list[str] | None = None) -> Neocortex:
    """A deep copy that runs its own weights. The compiled halves of ``build_device_neocortex`` are
    instance attributes bound to the original module, so a plain deep copy would run the original's
    weights: they are dropped, and compiled again for the copy when ``compile_on`` is a device."""
    clone = copy.deepcopy(neocortex)
    for name in ("encode", "decode"):
        clone.__dict__.pop(name, None)
    if compile_on is not None:
        compile_halves(clone, compile_on, [] if notes is None else notes)
    return clone


def build_neocortex(cfg: RunConfig, input_vocab_size: int) -> Neocortex:
    m = cfg.model
    if m.provider == "mlp":
        from biollm_core.models.mlp import MLPClassifier

        if None in (m.mlp_input_dim, m.mlp_output_heads, m.vocab_size):
            raise ValueError("the MLP's sizes come from the benchmark: call fit_to_benchmark(config, benchmark) first")
        return MLPClassifier(
            input_dim=m.mlp_input_dim, hidden_sizes=m.mlp_hidden_sizes, activation=m.mlp_activation, num_classes=m.vocab_size,
            num_heads=m.mlp_output_heads, injection_layer=m.injection_layer, dropout=m.dropout,
        )
    if m.provider == "tiny":
        return TinyTransformer(
            vocab_size=m.vocab_size, input_vocab_size=input_vocab_size, hidden_size=m.hidden_size,
            num_layers=m.num_layers, num_heads=m.num_heads, mlp_ratio=m.mlp_ratio, max_seq_len=m.max_seq_len,
            injection_layer=m.injection_layer, dropout=m.dropout,
        )
    from biollm_core.models.hf_causal_lm import build_hf_neocortex

    return build_hf_neocortex(
        model_name=m.hf_model_name, revision=m.hf_revision, trust_remote_code=m.hf_trust_remote_code,
        torch_dtype=m.hf_torch_dtype, attn_implementation=m.hf_attn_implementation,
        gradient_checkpointing=m.hf_gradient_checkpointing, local_files_only=m.hf_local_files_only,
        injection_fraction=m.hf_injection_fraction, vocab_size=m.vocab_size,
        consolidate_top_blocks=m.consolidate_top_blocks,
    )


FUSED_ADAMW_DEVICES = ("cpu", "cuda")  # where torch has a fused AdamW kernel (one op for all parameters)


def adamw(params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW, fused where torch has a kernel for the parameters' device, torch's default elsewhere.

    On CPU torch's default is a Python loop over parameters (a few small ops each, plus a host read of
    the step count); fused it is one op. Same update rule; the engine and `biollm bench engine`'s plain
    baseline both build their optimizers here, so the two are compared like for like.
    """
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def build_hippocampus(cfg: RunConfig, hidden_size: int) -> Hippocampus:
    e = cfg.experts
    return Hippocampus(
        hidden_size=hidden_size, num_experts=e.num_experts, expert_hidden=e.expert_hidden, top_k=e.top_k,
        routing=e.routing, init_scale=e.init_scale, utilization_bonus=e.utilization_bonus,
        capacity_penalty=e.capacity_penalty, seed=cfg.seed + 1, gate=e.gate, gate_bias=e.gate_bias,
        max_delta_ratio=e.max_delta_ratio,
    )


def build_replay(cfg: RunConfig, seq_len: int, device: torch.device, with_attention_mask: bool,
                 distributed: Distributed = SINGLE, base_targets: bool = False) -> ReplayBuffer:
    r = cfg.replay
    return ReplayBuffer(
        capacity=r.capacity, seq_len=seq_len, vocab_size=cfg.model.vocab_size, top_k_experts=cfg.experts.top_k,
        teacher_storage=r.teacher_storage, teacher_topk=r.teacher_topk, device=device, seed=cfg.seed + 2,
        with_attention_mask=with_attention_mask, distributed=distributed, base_targets=base_targets,
    )


def build_scheduler(cfg: RunConfig) -> SleepScheduler:
    c = cfg.consolidation
    return SleepScheduler(
        min_interval=c.sleep_min_interval, max_interval=c.sleep_max_interval, threshold=cfg.scheduler.pressure_threshold,
        min_steps=c.min_sleep_steps, max_steps=c.max_sleep_steps, fixed=cfg.scheduler.policy == "fixed",
    )


def build_sleep_settings(cfg: RunConfig) -> SleepSettings:
    c = cfg.consolidation
    return SleepSettings(
        batch_size=cfg.replay.batch_size, temperature=c.temperature, ewc_lambda=cfg.ewc.lambda_,
        fisher_decay=cfg.ewc.fisher_decay, normalize_fisher=cfg.ewc.normalize_fisher, grad_clip=c.grad_clip,
        pseudo_ratio=c.pseudo_ratio if c.pseudo_rehearsal else 0.0, pseudo_kind=c.pseudo_kind, perturb_prob=c.perturb_prob,
        label_weight=c.label_weight,
    )
