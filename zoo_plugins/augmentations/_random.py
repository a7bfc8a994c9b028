"""The random draws that the batch augmentations share, all from one ``torch.Generator``.

Each draw is made on the batch's device, so ``generator`` must live there too (a CUDA generator for a CUDA
batch). Every augmentation makes the same draws whatever ``p`` is, so a seed gives the same stream.
"""

from __future__ import annotations

import torch


def apply_mask(n: int, p: float, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """Which of ``n`` images an augmentation touches: a bool per image, True with probability ``p``."""
    return torch.rand(n, device=device, generator=generator) < p


def partners(n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """A random permutation: image ``i`` is paired with image ``perm[i]`` (itself now and then)."""
    return torch.randperm(n, device=device, generator=generator)


def uniform(
    n: int, low: float, high: float, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """``n`` float32 values drawn uniformly from [low, high)."""
    return torch.rand(n, device=device, generator=generator) * (high - low) + low


def beta(alpha: float, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` draws of λ ~ Beta(α, α) as float32, made as G₁ / (G₁ + G₂) with G ~ Gamma(α).

    ``torch.distributions.Beta`` takes no generator, ``torch._standard_gamma`` does. The gammas are drawn in
    float64 where the device has it because for small α both may underflow float32 to 0 (0/0); the rare
    pair that still does gets λ = 0.5.
    """
    dtype = torch.float64 if device.type in ("cpu", "cuda") else torch.float32
    gammas = torch._standard_gamma(torch.full((2, n), alpha, dtype=dtype, device=device), generator=generator)
    lam = gammas[0] / (gammas[0] + gammas[1])
    return torch.nan_to_num(lam, nan=0.5).float()
