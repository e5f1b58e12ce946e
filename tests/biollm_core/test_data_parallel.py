"""Data parallelism without Ray: the same runs on 2 gloo processes (torch.multiprocessing) and on 1.

W = 2 at the same global batch must give the figures of W = 1 (the ranks' shares of each loss sum to
the global batch's, the reservoir's draws are shared), every rank must take the same sleep decisions,
only rank 0 writes artifacts, and a W = 2 run stopped on both ranks resumes exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from biollm_core.config.loader import load_config
from biollm_core.distributed import SINGLE, Distributed, shard_bounds
from biollm_core.methods import METHOD_NAMES
from biollm_core.runner import run_experiment
from biollm_core.sleep_pressure import SleepScheduler
from biollm_platform.bench.local_group import run_group

# 2 tasks x 12 steps at batch 8 (4 rows a rank), a sleep every 6 steps, evals every 4, checkpoints every 8.
TINY = [
    "train=cpu", "benchmark.num_tasks=2", "benchmark.switch_every=12", "benchmark.heldout_size=32", "train.batch_size=8",
    "consolidation.sleep_min_interval=6", "consolidation.sleep_max_interval=6", "consolidation.min_sleep_steps=2",
    "consolidation.max_sleep_steps=2", "train.eval_interval=4", "replay.capacity=64", "replay.batch_size=8",
    "logging.checkpoint_interval=8", "logging.checkpoint_keep_last=1",
]
MATRICES = ("accuracy_matrix", "base_accuracy_matrix")
# Equal figures: the counts a run makes are exact at any W (integers), and so are the evaluations'
# token counts; the matrices are compared within TOLERANCE.
EXACT = ("steps", "gradient_steps", "samples_processed", "memory_episodes", "memory_bytes", "trainable_params")
CLS_EXACT = ("sleep_count", "sleep_steps", "refresh_count_total", "base_updates_in_sleep")
# Summing two half-batch gradients instead of one batch's changes the last bits of each update. Over
# these 24 steps that moved no held-out argmax in any method (max |A_W2 - A_W1| = 0.0 for all eight)
# and the final old-task loss by at most 2.7e-6 (cls; 4e-7 to 1.9e-6 for the others). The tolerance
# is one token in a task's 480 scored tokens (32 sequences x 15 supervised positions), so a near-tie
# that flips on another machine passes while a wrong shard or a missing reduction, which moves whole
# rows, does not; the loss is held to 1e-4.
TOLERANCE = 1 / 480 + 1e-9
LOSS_TOLERANCE = 1e-4
HERE = Path(__file__).resolve()


# cls with every option that reads the replay buffer on: do-no-harm episodes in the wake step,
# pseudo-rehearsal and labels in sleep, teacher refresh, token routing (dense experts).
CLS_OPTIONS = ["wake.harm_batch_size=4", "consolidation.pseudo_rehearsal=true", "consolidation.label_weight=0.5",
               "consolidation.teacher_refresh=true", "experts.routing=token"]
# Feature inputs (the MLP on a class-incremental split of an npz file): float episodes in the sharded
# reservoir, LwF's seen classes reduced over ranks, cls's gate on feature vectors.
FEATURES = [
    "model=mlp", "benchmark=split_classification", "benchmark.source=npz", "model.mlp_hidden_sizes=[16,16]",
    "benchmark.epochs_per_task=2", "benchmark.heldout_fraction=0.25", "train.batch_size=8", "train.eval_interval=2",
    "device=cpu", "replay.capacity=16", "replay.batch_size=8", "experts.num_experts=4", "experts.expert_hidden=8",
    "consolidation.sleep_min_interval=3", "consolidation.sleep_max_interval=3", "consolidation.min_sleep_steps=2",
    "consolidation.max_sleep_steps=2", "logging.checkpoint_interval=4", "logging.checkpoint_keep_last=1",
]
FEATURE_VARIANTS = ("er-features", "lwf-features", "cls-features")
VARIANTS = (*METHOD_NAMES, "cls-options", *FEATURE_VARIANTS)


def write_clusters(path: Path) -> None:
    """6 classes of 16 examples in 10 features, each class a well-separated cluster."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 16)
    np.savez(path, x=rng.normal(size=(6, 10))[y] * 3 + rng.normal(size=(len(y), 10)), y=y)


def overrides(variant: str, root: str = "") -> list[str]:
    if variant == "cls-options":
        return ["method=cls", *TINY, *CLS_OPTIONS]
    if variant in FEATURE_VARIANTS:
        return [f"method={variant.removesuffix('-features')}", *FEATURES, f"benchmark.path={Path(root) / 'clusters.npz'}"]
    return [f"method={variant}", *TINY, *(["method.fisher_samples=8"] if variant == "ewc" else [])]


class RecordSink:
    """Every step's record, kept in memory (the rank's view of the run)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        self.records.append({"step": step, **{k: v for k, v in metrics.items() if isinstance(v, int | float)}})

    def log_checkpoint(self, step: int, path: Path, final: bool) -> None:
        pass

    def log_summary(self, summary: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class StopAt(RecordSink):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        if step >= self.step:
            raise RuntimeError(f"stopped at step {step}")


def run_methods(distributed: Distributed, methods: list[str], root: str) -> dict[str, Any]:
    """Target of each rank: every method's run into ``root/<method>``; the summaries and records."""
    out: dict[str, Any] = {}
    for method in methods:
        sink = RecordSink()
        config = load_config(overrides(method, str(Path(root).parent)))
        summary = run_experiment(config, Path(root) / method, sinks=[sink], distributed=distributed)
        out[method] = {"summary": summary, "records": sink.records}
    return out


def run_stopped_then_resumed(distributed: Distributed, method: str, root: str, stop: int) -> dict[str, Any]:
    config = load_config(overrides(method))
    with pytest.raises(RuntimeError, match="stopped at step"):
        run_experiment(config, Path(root), sinks=[StopAt(stop)], distributed=distributed)
    return run_experiment(config, Path(root), resume=True, distributed=distributed)


def run_all(distributed: Distributed, methods: list[str], root: str, stop: int) -> dict[str, Any]:
    """Target of each rank, one process group for the whole module (a group costs seconds to start):
    every variant's run, cls stopped at ``stop`` and resumed, and the decision check."""
    return {"methods": run_methods(distributed, methods, root),
            "resumed": run_stopped_then_resumed(distributed, "cls", str(Path(root) / "resumed"), stop),
            "decisions": decide_apart(distributed), "even": even_sample(distributed), "gate_cache": gate_cache(distributed),
            "gate_cache_replayed_only": gate_cache(distributed, ("wake.gate_on_batch=false",))}


def gate_cache(distributed: Distributed, extra: tuple[str, ...] = ()) -> list[float]:
    """The cls learner's cached gate targets (a per-slot record) after 6 wake steps of the tiny stream,
    stale after the third (as after a sleep): each rank decodes only its rows, and every rank must end
    with every slot's value. ``extra``: more overrides (``wake.gate_on_batch=false``: only replayed
    episodes are decoded, so a batch's episodes are stored stale)."""
    from biollm_core import builders
    from biollm_core.device import pick_device
    from biollm_core.methods import MethodContext, build_method
    from biollm_core.runner import seed_everything

    config = load_config([*overrides("cls"), *extra])
    seed_everything(config.seed)
    device = pick_device(config.device)
    bench = builders.build_benchmark(config)
    heldout = bench.heldout(0)
    context = MethodContext(bench, device, builders.build_precision(config, device), heldout.labels.shape[1],
                            heldout.attention_mask is not None, distributed)
    method = build_method(config, context)
    B = config.train.batch_size
    for step in range(6):
        if step == 3:
            method.replay.invalidate_base_targets()
        method.observe(bench.train_batch(step, B).rows(distributed.rows(B)), step)
    return method.replay.tensors["base_targets"].tolist()


def even_sample(distributed: Distributed) -> dict[str, Any]:
    """This rank's share of a sample of 6 from a buffer fed the rank's halves of 10 global batches (as
    lists, with the dtypes: tensors would cross processes as shared memory of a process that exits)."""
    from biollm_core.replay_buffer import ReplayBuffer

    buffer = ReplayBuffer(capacity=20, seq_len=3, vocab_size=10, top_k_experts=0, teacher_storage="none", teacher_topk=1,
                          device=torch.device("cpu"), seed=3, with_attention_mask=True, distributed=distributed)
    gen = torch.Generator().manual_seed(0)
    for step in range(10):
        ids, mask = torch.randint(0, 10, (4, 3), generator=gen), torch.rand(4, 3, generator=gen) > 0.3
        rows = distributed.rows(4)
        buffer.add(input_ids=ids[rows], labels=ids[rows] + 1, attention_mask=mask[rows], task_id=step // 5, step=step)
    sample = buffer.sample_even(6)
    parts = {"input_ids": sample.input_ids, "labels": sample.labels, "mask": sample.attention_mask, "task_ids": sample.task_ids}
    return {name: (value.tolist(), str(value.dtype)) for name, value in parts.items()}


def decide_apart(distributed: Distributed) -> list[int]:
    """Each rank reads a different pressure; agree() makes the decision rank 0's on both."""
    scheduler = SleepScheduler(min_interval=1, max_interval=100, threshold=0.5, min_steps=1, max_steps=4)
    decisions = []
    for step in range(12):
        scheduler.tick()
        pressure = (0.9 if distributed.rank == 0 else 0.1) if step % 3 == 0 else (0.1 if distributed.rank == 0 else 0.9)
        decisions.append(scheduler.decide(distributed.agree(pressure)))
        if decisions[-1]:
            scheduler.slept()
    return decisions


def test_shards_cover_a_batch_once() -> None:
    assert [shard_bounds(10, r, 3) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]
    assert Distributed(1, 2).rows(8) == slice(4, 8)
    loss = torch.tensor(2.0)
    assert SINGLE.share(loss, 3, 9) is loss and float(Distributed(0, 2).share(loss, 3, 9)) == pytest.approx(2 / 3)
    assert float(Distributed(0, 2).share(torch.tensor(float("nan")), 0, 9)) == 0.0  # a rank holding none adds nothing
    with pytest.raises(ValueError, match="does not split into 3"):
        Distributed(0, 3).check_divisible("train.batch_size", 8)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    """Every variant at W = 1 (this process) and at W = 2 (one group of 2 spawned processes, ``run_all``)."""
    root = tmp_path_factory.mktemp("data_parallel")
    write_clusters(root / "clusters.npz")
    methods = list(VARIANTS)
    return root, run_methods(SINGLE, methods, str(root / "w1")), run_group(2, f"{HERE}:run_all", methods=methods,
                                                                           root=str(root / "w2"), stop=10)


@pytest.mark.slow
def test_an_even_sample_gives_each_rank_an_equal_share_of_one_processs_sample(runs) -> None:  # noqa: ANN001
    whole = even_sample(SINGLE)
    parts = [rank["even"] for rank in runs[2]]
    assert [len(p["labels"][0]) for p in parts] == [3, 3]  # whoever holds the episodes
    for name, (value, dtype) in whole.items():
        assert parts[0][name][0] + parts[1][name][0] == value, name
        assert parts[0][name][1] == parts[1][name][1] == dtype, name


@pytest.mark.slow
def test_each_rank_caches_every_slots_gate_target_as_one_process_does(runs) -> None:  # noqa: ANN001
    whole = torch.tensor(gate_cache(SINGLE))
    cached = ~whole.isnan()
    # Slots 0-23 (steps 0-2, stale after step 2): cached again only where replayed since; 24-47 cached when stored.
    assert 0 < int(cached[:24].sum()) < 24 and cached[24:48].all() and not cached[48:].any()
    for rank in runs[2]:
        torch.testing.assert_close(torch.tensor(rank["gate_cache"]), whole, rtol=0, atol=0, equal_nan=True)
    # Without the batch in the gate's loss only replayed episodes are decoded: fewer slots cached, the same on each rank.
    replayed_only = torch.tensor(gate_cache(SINGLE, ("wake.gate_on_batch=false",)))
    assert 0 < int((~replayed_only.isnan()).sum()) < int(cached.sum())
    for rank in runs[2]:
        torch.testing.assert_close(torch.tensor(rank["gate_cache_replayed_only"]), replayed_only, rtol=0, atol=0, equal_nan=True)


@pytest.mark.slow
def test_divergent_pressures_give_one_decision(runs: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    first, second = (rank["decisions"] for rank in runs[2])
    assert first == second and any(first) and not all(first)


@pytest.mark.slow
def test_two_ranks_give_the_figures_of_one(runs: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    root, single, ranks = runs
    for method in VARIANTS:
        one, two = single[method]["summary"], ranks[0]["methods"][method]["summary"]
        for name in MATRICES:
            difference = (torch.tensor(one[name]) - torch.tensor(two[name])).abs().max().item()
            assert difference <= TOLERANCE, (method, name, difference)
        assert abs(one["final_old_task_loss"] - two["final_old_task_loss"]) <= LOSS_TOLERANCE, method
        names = EXACT + (CLS_EXACT if method.startswith("cls") else ())
        assert {k: two[k] for k in names} == {k: one[k] for k in names}, method
        assert (one["world_size"], two["world_size"]) == (1, 2)
        assert sum(two["rank_samples_processed"]) == two["samples_processed"] and all(two["rank_samples_processed"])
        # every rank took the same sleeps, saw the same figures and logged the same steps
        steps = [[(r["step"], r.get("sleep_count")) for r in rank["methods"][method]["records"]] for rank in ranks]
        assert steps[0] == steps[1], method
        assert json.loads((root / "w2" / method / "run_metadata.json").read_text())["world_size"] == 2
    # rank 1 wrote its own part of each checkpoint (replay shard, sample count) and nothing else
    written = {p.relative_to(root / "w2").as_posix() for p in (root / "w2").rglob("*") if p.is_file() and "resumed/" not in str(p)}
    rank1 = {p for p in written if "/rank-1/" in p}
    assert {p.split("/", 1)[1] for p in rank1 if p.startswith("finetune/")} == {
        f"checkpoints/rank-1/step-000000{step}/{f}" for step in (16, 24) for f in ("state.pt", "meta.json")}  # keep_last + 1
    assert {p.split("/", 1)[1] for p in written - rank1 if p.startswith("finetune/")} == {
        "validated_config.json", "run_metadata.json", "metrics.jsonl", "summary.json",
        *(f"checkpoints/step-00000024/{f}" for f in ("state.pt", "meta.json")),
    }


@pytest.mark.slow
def test_two_ranks_resume_exactly(runs: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    """cls at W = 2 stopped at step 10 on both ranks resumes from its step-8 checkpoint (rank 1 from its
    own replay shard) and ends where the uninterrupted W = 2 run ends."""
    root, _, ranks = runs
    whole, resumed = ranks[0]["methods"]["cls"]["summary"], ranks[0]["resumed"]
    for name in (*MATRICES, *CLS_EXACT, "anytime_acc", "final_old_task_loss", "samples_processed"):
        assert resumed[name] == whole[name], name
    # rank 1 kept its parts of rank 0's last checkpoints (keep_last 1, plus one for a torn newest)
    assert sorted(p.name for p in (root / "w2" / "resumed" / "checkpoints" / "rank-1").iterdir()) == [
        "step-00000016", "step-00000024"]
