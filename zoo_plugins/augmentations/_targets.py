"""Mixing of targets by the share each source image has in an augmented image."""

from __future__ import annotations

import torch

from zoo_core.augment import soft_targets


def blend_targets(
    y: torch.Tensor, sources: torch.Tensor, weights: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """The soft target of each image made of several sources: ``Σₛ weights[s, i] · y[sources[s, i]]``.

    ``y`` holds int64 labels (N,) or soft targets (N, num_classes); ``sources`` (S, N) holds the index of
    each image's ``s``-th source and ``weights`` (S, N) the share of it. The shares of an image sum to 1, so
    the result does too.
    """
    soft = soft_targets(y, num_classes)
    return (weights.to(soft.dtype).unsqueeze(-1) * soft[sources]).sum(0)
