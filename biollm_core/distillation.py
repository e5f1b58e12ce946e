"""The sleep distillation loss (spec §5.2): pure tensor functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    teacher_indices: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``0.5 * KL(teacher || student) + 0.5 * soft-CE(teacher, student)`` per supervised token, averaged.

    student_logits: (B, T, V). teacher_logits: (B, T, V), or (B, T, K) with ``teacher_indices`` (B, T, K)
    naming the vocabulary entries kept (top-k storage; the teacher is renormalised over them).
    mask: (B, T) bool, the supervised tokens. Tokens whose teacher is not finite are dropped from the
    mask, so one corrupt episode cannot poison a sleep step. Returns (loss, mean KL), both scalars.
    """
    teacher = teacher_logits.float()
    finite = torch.isfinite(teacher).all(dim=-1)
    mask = mask & finite
    teacher = torch.where(finite.unsqueeze(-1), teacher, torch.zeros_like(teacher))
    student_logp = F.log_softmax(student_logits.float() / temperature, dim=-1)
    if teacher_indices is not None:
        student_logp = student_logp.gather(-1, teacher_indices.long())
    teacher_logp = F.log_softmax(teacher / temperature, dim=-1)
    teacher_p = teacher_logp.exp()
    cross_entropy = -(teacher_p * student_logp).sum(-1)  # (B, T)
    kl = cross_entropy + (teacher_p * teacher_logp).sum(-1)  # CE - H(teacher)
    weight = mask.float()
    count = weight.sum().clamp_min(1.0)
    loss = ((0.5 * kl + 0.5 * cross_entropy) * weight).sum() / count
    return loss, (kl * weight).sum() / count
