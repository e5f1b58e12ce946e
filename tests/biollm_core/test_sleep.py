"""Sleep (spec §5): consolidation by distillation + EWC, robust to corrupt teachers."""

from __future__ import annotations

import math

import pytest
import torch

from biollm_core.device import Precision
from biollm_core.distillation import distillation_loss
from biollm_core.models.tiny_transformer import TinyTransformer
from biollm_core.replay_buffer import ReplayBuffer
from biollm_core.replay_sample import ReplaySample
from biollm_core.sleep import EwcState, SleepSettings, pseudo_samples, sleep_cycle

V, T, EPISODES = 16, 6, 8
CPU = Precision(device=torch.device("cpu"))


def neocortex() -> TinyTransformer:
    torch.manual_seed(0)
    model = TinyTransformer(
        vocab_size=V, input_vocab_size=V, hidden_size=16, num_layers=2, num_heads=2, mlp_ratio=2,
        max_seq_len=T, injection_layer=1,
    )
    return model.requires_grad_(False)


def settings(**kwargs: object) -> SleepSettings:
    values = {"batch_size": EPISODES, "temperature": 1.0, "ewc_lambda": 1.0, "fisher_decay": 0.9,
              "normalize_fisher": True, "grad_clip": 1.0, "pseudo_ratio": 0.0, "pseudo_kind": "perturb",
              "perturb_prob": 0.5, **kwargs}
    return SleepSettings(**values)


def filled_replay(storage: str = "full", corrupt: bool = False) -> ReplayBuffer:
    """EPISODES episodes whose teacher is a sharp random target; with ``corrupt`` one holds inf and nan."""
    gen = torch.Generator().manual_seed(1)
    replay = ReplayBuffer(
        capacity=16, seq_len=T, vocab_size=V, top_k_experts=1, teacher_storage=storage, teacher_topk=4,
        device=torch.device("cpu"), seed=0, with_attention_mask=False,
    )
    ids = torch.randint(0, V, (EPISODES, T), generator=gen)
    labels = ids.roll(1, dims=1)
    labels[:, 0] = -100
    teacher = 4.0 * torch.nn.functional.one_hot(labels.clamp_min(0), V).float()
    if corrupt:
        teacher[3, 2, 5] = float("inf")
        teacher[3, 4, :] = float("nan")
    replay.add(input_ids=ids, labels=labels, attention_mask=None, teacher_logits=teacher, task_id=0, step=0,
               experts=torch.zeros(EPISODES, 1, dtype=torch.long))
    return replay


def run_sleep(model: TinyTransformer, replay: ReplayBuffer, steps: int, **kwargs: object) -> tuple:
    ewc = EwcState(model.consolidation_parameters())
    optimizer = torch.optim.AdamW([p for _, p in model.consolidation_parameters()], lr=1e-2)
    stats = sleep_cycle(
        model, optimizer, CPU.grad_scaler(), replay, ewc, steps, settings(**kwargs), CPU,
        lambda x, mask: model(x, mask), torch.Generator().manual_seed(2),
    )
    return stats, ewc


def replay_kl(model: TinyTransformer, replay: ReplayBuffer) -> float:
    sample = replay.gather(torch.arange(EPISODES))
    with torch.no_grad():
        _, kl = distillation_loss(model(sample.input_ids), sample.teacher, sample.labels != -100, sample.teacher_indices)
    return kl.item()


@pytest.mark.parametrize("storage", ["full", "topk"])
def test_a_non_finite_teacher_does_not_poison_sleep(storage: str) -> None:
    model, replay = neocortex(), filled_replay(storage, corrupt=True)
    assert not torch.isfinite(replay.tensors["teacher"]).all()
    stats, ewc = run_sleep(model, replay, steps=4)  # the corrupt episode is in every batch (batch = buffer)
    assert stats.updates == 4 and stats.skipped == 0
    assert math.isfinite(stats.distill_kl) and math.isfinite(stats.ewc_penalty)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(torch.isfinite(f).all() for f in ewc.fisher)


@pytest.mark.parametrize("storage", ["full", "topk"])
def test_sleep_moves_the_neocortex_towards_the_teacher(storage: str) -> None:
    model, replay = neocortex(), filled_replay(storage)
    before = replay_kl(model, replay)
    stats, _ = run_sleep(model, replay, steps=15, ewc_lambda=0.0)
    assert stats.updates == 15
    assert replay_kl(model, replay) < 0.5 * before


def test_fisher_anchor_and_penalty_after_a_cycle() -> None:
    model, replay = neocortex(), filled_replay()
    start = [p.detach().clone() for p in model.parameters()]
    stats, ewc = run_sleep(model, replay, steps=3)
    assert stats.ewc_penalty > 0  # at the last step theta had moved from the anchor taken before the cycle
    assert sum(f.sum().item() for f in ewc.fisher) > 0  # the Fisher learned from the distillation gradients
    for anchor, p in zip(ewc.anchors, model.parameters(), strict=True):
        assert torch.equal(anchor, p.detach())  # the anchor is re-taken after the cycle
    assert any(not torch.equal(p, p0) for p, p0 in zip(model.parameters(), start, strict=True))


def test_ewc_holds_the_neocortex_near_its_anchor() -> None:
    free_model, pinned_model = neocortex(), neocortex()
    start = [p.detach().clone() for p in free_model.parameters()]

    def moved(model: TinyTransformer) -> float:
        return sum((p - p0).pow(2).sum().item() for p, p0 in zip(model.parameters(), start, strict=True))

    run_sleep(free_model, filled_replay(), steps=5, ewc_lambda=0.0, grad_clip=0.0)
    run_sleep(pinned_model, filled_replay(), steps=5, ewc_lambda=1e4, grad_clip=0.0)
    assert moved(pinned_model) < 0.25 * moved(free_model)  # measured: about 0.06


def test_sleep_restores_whether_the_neocortex_was_trainable() -> None:
    frozen, replay = neocortex(), filled_replay()
    run_sleep(frozen, replay, steps=1)
    assert not any(p.requires_grad for p in frozen.parameters())
    awake = neocortex().requires_grad_(True)  # consolidation.wake_base_lr_scale > 0 trains it while awake
    run_sleep(awake, replay, steps=1)
    assert all(p.requires_grad for p in awake.parameters())


def test_a_non_finite_loss_is_skipped_and_counted() -> None:
    model, replay = neocortex(), filled_replay()
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
    stats, _ = run_sleep(model, replay, steps=3)
    assert (stats.updates, stats.skipped) == (0, 3)
    assert torch.isnan(model.head.weight[0, 0]) and torch.isfinite(model.head.weight[1:]).all()


@pytest.mark.parametrize("storage", ["full", "topk"])
@pytest.mark.parametrize("kind", ["random", "perturb"])
def test_pseudo_samples_are_labelled_by_the_combined_model(storage: str, kind: str) -> None:
    model, replay = neocortex(), filled_replay(storage)
    sample = replay.gather(torch.arange(EPISODES))
    pseudo = pseudo_samples(sample, 3, V, kind, 0.5, lambda x, mask: model(x, mask), torch.Generator().manual_seed(3))
    assert torch.equal(pseudo.input_ids[3:], sample.input_ids[3:])  # only the first `count` are replaced
    assert torch.equal(pseudo.input_ids[:3, 0], sample.input_ids[:3, 0])  # unsupervised positions are kept
    assert not torch.equal(pseudo.input_ids[:3], sample.input_ids[:3])
    with torch.no_grad():
        logits = model(pseudo.input_ids[:3])
    if storage == "full":
        torch.testing.assert_close(pseudo.teacher[:3], logits.half())
    else:
        values, indices = logits.topk(4, dim=-1)
        assert torch.equal(pseudo.teacher_indices[:3], indices)
        torch.testing.assert_close(pseudo.teacher[:3], values.half())
        assert torch.equal(pseudo.teacher_indices[3:], sample.teacher_indices[3:])
    assert torch.equal(pseudo.teacher[3:], sample.teacher[3:])
    assert torch.equal(sample.teacher, replay.gather(torch.arange(EPISODES)).teacher)  # the buffer is untouched


def test_sleep_with_pseudo_rehearsal_runs() -> None:
    model, replay = neocortex(), filled_replay("topk")
    stats, _ = run_sleep(model, replay, steps=2, pseudo_ratio=0.25)
    assert stats.updates == 2 and math.isfinite(stats.distill_kl)


def test_ewc_state_round_trip() -> None:
    model = neocortex()
    ewc = EwcState(model.consolidation_parameters())
    for f in ewc.fisher:
        f.fill_(0.5)
    copy = EwcState(neocortex().consolidation_parameters())
    copy.load_state_dict(ewc.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(copy.fisher, ewc.fisher, strict=True))
    assert ewc.nbytes() == 2 * sum(p.numel() * 4 for p in model.parameters())


def test_a_grad_scaler_overflow_never_reaches_the_fisher() -> None:
    """fp16 AMP: the scaler's first scales overflow. Those steps must be skipped before the Fisher update,
    or an inf in F turns every later EWC gradient into NaN (reproduced on the CPU with a huge scale)."""
    model, replay = neocortex(), filled_replay()
    ewc = EwcState(model.consolidation_parameters())
    optimizer = torch.optim.AdamW([p for _, p in model.consolidation_parameters()], lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=3e38)  # loss * scale = inf: the first steps overflow
    stats = sleep_cycle(model, optimizer, scaler, replay, ewc, 12, settings(), CPU,
                        lambda x, mask: model(x, mask), torch.Generator().manual_seed(2))
    assert stats.skipped >= 1 and stats.updates >= 1 and stats.updates + stats.skipped == 12
    assert scaler.get_scale() < 3e38
    assert all(torch.isfinite(f).all() for f in ewc.fisher)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isfinite(stats.ewc_penalty) and stats.ewc_penalty > 0


def test_label_weight_adds_the_cross_entropy_on_stored_labels_but_not_on_pseudo_rows() -> None:
    from biollm_core.sleep import sleep_loss

    g = torch.Generator().manual_seed(0)
    student = torch.randn(3, 2, 5, generator=g)
    labels = torch.tensor([[1, -100], [4, 2], [0, 3]])
    sample = ReplaySample(torch.zeros(3, 2, dtype=torch.long), labels, None, torch.randn(3, 2, 5, generator=g), None,
                          torch.zeros(3))
    plain, kl = sleep_loss(student, sample, 1.0, 0.0)
    weighted, kl_too = sleep_loss(student, sample, 1.0, 0.5)
    by_hand = torch.nn.functional.cross_entropy(student.flatten(0, 1), labels.flatten(), ignore_index=-100)
    assert torch.allclose(weighted - plain, 0.5 * by_hand) and torch.equal(kl, kl_too)
    skip_first, _ = sleep_loss(student, sample, 1.0, 0.5, pseudo_rows=1)  # row 0 is a pseudo-sample
    rest = torch.nn.functional.cross_entropy(student[1:].flatten(0, 1), labels[1:].flatten(), ignore_index=-100)
    assert torch.allclose(skip_first - plain, 0.5 * rest)


@pytest.mark.parametrize("storage", ["full", "topk"])
def test_teacher_refresh_replaces_only_teachers_the_combined_model_beats(storage: str) -> None:
    from biollm_core.sleep import refresh_teachers

    V, T = 6, 3
    replay = ReplayBuffer(capacity=4, seq_len=T, vocab_size=V, top_k_experts=1, teacher_storage=storage, teacher_topk=3,
                          device=torch.device("cpu"), seed=0, with_attention_mask=False)
    labels = torch.tensor([[1, 2, 3], [1, 2, 3]])
    wrong = 10 * torch.nn.functional.one_hot((labels + 1) % V, V).float()  # a teacher wrong on every token
    right = 10 * torch.nn.functional.one_hot(labels, V).float()
    replay.add(input_ids=torch.tensor([[0, 0, 0], [5, 5, 5]]), labels=labels, attention_mask=None, task_id=0, step=0,
               teacher_logits=torch.stack([wrong[0], right[1]]), experts=torch.zeros(2, 1, dtype=torch.long))

    def combined(ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:  # right on episode 0, wrong on 1
        return torch.where((ids[:, :1] == 0).unsqueeze(-1), right[:1].expand(len(ids), -1, -1), wrong[:1].expand(len(ids), -1, -1))

    assert refresh_teachers(replay, combined, batch_size=1) == 1
    assert replay.teacher_argmax(slice(0, 2)).tolist() == [[1, 2, 3], [1, 2, 3]]  # 0 replaced, 1 (already right) kept
    assert refresh_teachers(replay, combined, batch_size=2) == 0
