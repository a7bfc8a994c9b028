"""Evaluation of a classifier over batches: loss, top-1, top-5, per-class accuracy and confusion matrix."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core.errors import ZooError


@dataclass(frozen=True)
class EvalResult:
    """Metrics over a whole evaluation set; accuracies are fractions in [0, 1]."""

    loss: float
    top1: float
    top5: float
    k: int  # the k of the "top-5" accuracy: min(5, num_classes)
    count: int
    confusion: Tensor  # (num_classes, num_classes) int64 on the CPU: rows are true classes, columns predicted

    @property
    def per_class(self) -> Tensor:
        """Accuracy of each true class (recall), NaN for a class with no sample."""
        totals = self.confusion.sum(dim=1)
        return self.confusion.diagonal().double() / totals.double()

    def to_dict(self, classes: list[str]) -> dict:
        """A JSON-ready view: metrics, per-class accuracy by name (None when absent) and the matrix."""
        return {
            "count": self.count,
            "loss": self.loss,
            "top1": self.top1,
            "top5": self.top5,
            "k": self.k,
            "per_class": {
                name: (None if math.isnan(acc) else acc)
                for name, acc in zip(classes, self.per_class.tolist(), strict=True)
            },
            "confusion": self.confusion.tolist(),
        }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    num_classes: int,
    autocast_dtype: torch.dtype | None = None,
    device_type: str = "cpu",
    reduce: Callable[[Tensor], object] | None = None,
) -> EvalResult:
    """Run ``model`` over ``(x, y)`` batches (float normalized inputs, int64 labels) and measure it.

    Counts stay on the batches' device and reach the host once, at the end. ``reduce`` is called on the
    packed float64 counts before then (in place), e.g. ``torch.distributed.all_reduce`` so that every rank
    gets the metrics of the whole set. The model's train/eval mode is restored afterwards.
    """
    k = min(5, num_classes)
    stats: Tensor | None = None  # [loss sum, count, top-1 hits, top-k hits, confusion (num_classes²)]
    was_training = model.training
    model.eval()
    try:
        for x, y in batches:
            with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(x)
            logits = logits.float()
            if stats is None:
                stats = torch.zeros(4 + num_classes * num_classes, dtype=torch.float64, device=logits.device)
            top = logits.topk(k, dim=1).indices
            hits = top == y.unsqueeze(1)
            stats[0] += F.cross_entropy(logits, y, reduction="sum")
            stats[1] += y.numel()
            stats[2] += hits[:, 0].sum()
            stats[3] += hits.any(dim=1).sum()
            # index_add_ rather than bincount: bincount on CUDA reads the max label back to the host.
            cells = y * num_classes + top[:, 0]
            stats[4:].index_add_(0, cells, torch.ones_like(cells, dtype=torch.float64))
    finally:
        model.train(was_training)
    if stats is None:
        stats = torch.zeros(4 + num_classes * num_classes, dtype=torch.float64)
    if reduce is not None:
        reduce(stats)
    stats = stats.cpu()
    count = int(stats[1])
    if count == 0:
        raise ZooError("Nothing to evaluate: the evaluation set is empty")
    return EvalResult(
        loss=float(stats[0]) / count,
        top1=float(stats[2]) / count,
        top5=float(stats[3]) / count,
        k=k,
        count=count,
        confusion=stats[4:].round().long().view(num_classes, num_classes),
    )
