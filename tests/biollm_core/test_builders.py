"""Builders map config sections to flat keyword arguments of the engine's parts."""

from __future__ import annotations

import pytest
import torch

from biollm_core import builders
from biollm_core.benchmarks.toy import ToyBenchmark
from biollm_core.config.loader import load_config
from biollm_core.hippocampus import Hippocampus
from biollm_core.models.tiny_transformer import TinyTransformer

OVERRIDES = [
    "train=cpu", "experts.num_experts=3", "experts.top_k=1", "replay.capacity=32", "replay.teacher_storage=topk",
    "replay.teacher_topk=5", "benchmark.num_tasks=3", "consolidation.sleep_min_interval=7",
    "consolidation.sleep_max_interval=9", "ewc.lambda=2.5",
]


def test_parts_follow_the_config() -> None:
    cfg = load_config(OVERRIDES)
    bench = builders.build_benchmark(cfg)
    assert isinstance(bench, ToyBenchmark)
    assert bench.num_tasks == 3
    assert bench.total_steps == (cfg.train.max_steps or 3 * cfg.benchmark.switch_every)
    model = builders.build_neocortex(cfg, bench.input_vocab_size)
    assert isinstance(model, TinyTransformer)
    assert model.token_embedding.num_embeddings == cfg.model.vocab_size + 3  # the task cues
    assert model.head.out_features == cfg.model.vocab_size
    hip = builders.build_hippocampus(cfg, model.hidden_size)
    assert isinstance(hip, Hippocampus)
    assert (hip.num_experts, hip.top_k, hip.routing) == (3, 1, cfg.experts.routing)
    replay = builders.build_replay(cfg, cfg.benchmark.seq_len, torch.device("cpu"), with_attention_mask=False)
    assert replay.capacity == 32 and replay.teacher_storage == "topk"
    assert replay.tensors["teacher"].shape == (32, cfg.benchmark.seq_len, 5)
    scheduler = builders.build_scheduler(cfg)
    assert (scheduler.min_interval, scheduler.max_interval) == (7, 9)
    settings = builders.build_sleep_settings(cfg)
    assert settings.ewc_lambda == 2.5 and settings.batch_size == cfg.replay.batch_size
    assert settings.pseudo_ratio == (cfg.consolidation.pseudo_ratio if cfg.consolidation.pseudo_rehearsal else 0.0)


def _output(model: TinyTransformer, x: torch.Tensor) -> torch.Tensor:
    return model.decode(model.encode(x, None), None)


def test_a_copy_of_a_neocortex_with_compiled_halves_runs_and_trains_its_own_weights() -> None:
    """``train.compile`` sets ``encode``/``decode`` as instance attributes bound to the original module
    (here the uncompiled bound methods, the same shape): a plain deep copy would run, and never train,
    the original's frozen weights (how ``bench engine train.compile=true`` failed)."""
    cfg = load_config(OVERRIDES)
    vocab = builders.build_benchmark(cfg).input_vocab_size
    neocortex = builders.build_device_neocortex(cfg, vocab, torch.device("cpu"), builders.build_precision(cfg, torch.device("cpu")))
    neocortex.encode, neocortex.decode = neocortex.encode, neocortex.decode  # what maybe_compile's wrappers close over
    x = torch.randint(0, 64, (2, cfg.benchmark.seq_len))
    before = _output(neocortex, x)
    clone = builders.copy_neocortex(neocortex).requires_grad_(True)
    assert "encode" not in clone.__dict__ and "decode" not in clone.__dict__
    with torch.no_grad():
        clone.head.weight.zero_()
    assert before.abs().sum() > 0 and torch.equal(_output(clone, x), torch.zeros_like(before))  # the copy's weights
    assert torch.equal(_output(neocortex, x), before)
    _output(clone, x).sum().backward()
    assert clone.token_embedding.weight.grad is not None and clone.head.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in neocortex.parameters())
    mps_notes: list[str] = []  # compile_on compiles the copy's own halves (maybe_compile; on mps it leaves them with a note)
    again = builders.copy_neocortex(neocortex, compile_on=torch.device("mps"), notes=mps_notes)
    assert mps_notes == ["train.compile is ignored on mps"] * 2 and again.encode.__self__ is again


def test_pseudo_rehearsal_off_means_no_pseudo_samples() -> None:
    off = builders.build_sleep_settings(load_config(["consolidation.pseudo_rehearsal=false"]))
    on = builders.build_sleep_settings(load_config(["consolidation.pseudo_rehearsal=true", "consolidation.pseudo_ratio=0.5"]))
    assert off.pseudo_ratio == 0.0 and on.pseudo_ratio == 0.5


def test_adamw_is_fused_on_cpu_and_updates_like_torch_default() -> None:
    """builders.adamw: the same AdamW update as torch's default loop, in one fused op on CPU."""
    torch.manual_seed(0)
    a, b = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    initial = a.weight.detach().clone()
    fused = builders.adamw(a.parameters(), lr=0.1, weight_decay=0.05)
    plain = torch.optim.AdamW(b.parameters(), lr=0.1, weight_decay=0.05)
    assert fused.defaults["fused"] is True
    x = torch.randn(8, 5)
    for _ in range(5):
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert (a.weight - initial).abs().min() > 0  # every weight moved: the steps were real


def _instruction_files(tmp_path) -> tuple[str, str]:  # noqa: ANN001
    """A word-level tokenizer saved with save_pretrained and two tasks of examples."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<eos>", "say", "a", "b", "c", "one"]
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<eos>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>").save_pretrained(tmp_path / "tok")
    rows = [{"task": task, "prompt": f"say {w}", "response": f"{w} one"} for task in ("t1", "t2") for w in "abcabcabcabc"]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(tmp_path / "tok"), str(tmp_path / "data.jsonl")


def test_every_benchmark_honours_train_max_steps(tmp_path) -> None:  # noqa: ANN001
    tokenizer, data = _instruction_files(tmp_path)
    common = [f"benchmark.tokenizer_name={tokenizer}", "benchmark.local_path=" + data, "model.vocab_size=6",
              "benchmark.heldout_per_task=2", "benchmark.min_examples_per_task=4"]
    instruction = load_config(["benchmark=instruction", *common])
    assert builders.build_benchmark(instruction).total_steps == 2 * 200  # one pass: 2 tasks x steps_per_task
    short = load_config(["benchmark=instruction", *common, "train.max_steps=20"])
    assert builders.build_benchmark(short).total_steps == 20
    assert builders.build_benchmark(load_config(["train.max_steps=20"])).total_steps == 20  # toy


def _npz(tmp_path, classes: int = 4, per_class: int = 10, features: int = 6) -> str:  # noqa: ANN001
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), per_class)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(len(y), features)) + y[:, None], y=y)
    return str(tmp_path / "data.npz")


def test_a_feature_benchmark_sizes_the_mlp(tmp_path) -> None:  # noqa: ANN001
    from biollm_core.benchmarks.classification import ClassificationBenchmark
    from biollm_core.errors import UserError
    from biollm_core.models.mlp import MLPClassifier

    path = _npz(tmp_path)
    common = ["model=mlp", "benchmark=split_classification", "benchmark.source=npz", f"benchmark.path={path}",
              "model.mlp_hidden_sizes=[8,8]", "model.injection_layer=1"]
    for scenario, heads, classes in (("task", 2, 2), ("domain", 1, 2), ("class", 1, 4)):
        cfg = load_config([*common, f"benchmark.scenario={scenario}"])
        bench = builders.build_benchmark(cfg)
        assert isinstance(bench, ClassificationBenchmark) and bench.num_tasks == 2
        fitted = builders.fit_to_benchmark(cfg, bench)
        assert (fitted.model.mlp_input_dim, fitted.model.mlp_output_heads, fitted.model.vocab_size) == (6, heads, classes)
        model = builders.build_neocortex(fitted, bench.input_vocab_size)
        assert isinstance(model, MLPClassifier) and model.hidden_size == 8
        assert model(bench.heldout(1).input_ids).shape == (4, heads, classes)
    cfg = load_config([*common, "model.vocab_size=10"])
    with pytest.raises(UserError, match=r"model.vocab_size=10, but benchmark split_classification \(class-incremental\) needs 4"):
        builders.fit_to_benchmark(cfg, builders.build_benchmark(cfg))
    with pytest.raises(ValueError, match="call fit_to_benchmark"):
        builders.build_neocortex(cfg, 0)
    toy = load_config()
    assert builders.fit_to_benchmark(toy, builders.build_benchmark(toy)) is toy  # token models: unchanged
