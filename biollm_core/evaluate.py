"""Evaluation on held-out sets: the base model (neocortex alone) and the combined model, in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from biollm_core.device import Precision
from biollm_core.distributed import SINGLE, Distributed
from biollm_core.hippocampus import Hippocampus
from biollm_core.protocols import Batch, Neocortex


@dataclass
class TaskScores:
    """Per-task figures, index = position in the ``tasks`` list that was evaluated."""

    base_accuracy: list[float]
    base_loss: list[float]
    combined_accuracy: list[float]
    combined_loss: list[float]


def _scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (correct tokens, summed loss, supervised tokens) as scalars."""
    mask = labels != -100
    loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
    correct = ((logits.argmax(-1) == labels) & mask).sum()
    return correct, loss, mask.sum()


@torch.no_grad()
def evaluate_tasks(
    neocortex: Neocortex,
    hippocampus: Hippocampus | None,
    heldouts: Sequence[Batch],
    batch_size: int,
    precision: Precision,
    distributed: Distributed = SINGLE,
) -> TaskScores:
    """Token accuracy and mean loss of both models on each held-out set; one host sync at the end.

    Data parallel: each rank scores its share of every held-out set and the sums are reduced, so every
    rank gets the figures of the whole sets."""
    totals = []  # per task: (base correct, base loss, combined correct, combined loss, tokens)
    for heldout in heldouts:
        acc = torch.zeros(5, dtype=torch.float64, device=heldout.input_ids.device)
        rows = distributed.rows(len(heldout))
        for start in range(rows.start, rows.stop, batch_size):
            stop = min(start + batch_size, rows.stop)
            x = heldout.input_ids[start:stop]
            y = heldout.labels[start:stop]
            mask = None if heldout.attention_mask is None else heldout.attention_mask[start:stop]
            with precision.autocast():
                hidden = neocortex.encode(x, mask)
                base = neocortex.decode(hidden, mask)
                combined = base if hippocampus is None else neocortex.decode(hidden + hippocampus(hidden, mask).delta, mask)
            bc, bl, n = _scores(base, y)
            cc, cl, _ = _scores(combined, y)
            acc += torch.stack([bc, bl, cc, cl, n]).to(acc.dtype)
        totals.append(acc)
    rows = distributed.all_reduce_sum(torch.stack(totals)).cpu().tolist() if totals else []
    tokens = [max(r[4], 1.0) for r in rows]
    return TaskScores(
        base_accuracy=[r[0] / n for r, n in zip(rows, tokens, strict=True)],
        base_loss=[r[1] / n for r, n in zip(rows, tokens, strict=True)],
        combined_accuracy=[r[2] / n for r, n in zip(rows, tokens, strict=True)],
        combined_loss=[r[3] / n for r, n in zip(rows, tokens, strict=True)],
    )
