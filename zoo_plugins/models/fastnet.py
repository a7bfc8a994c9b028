"""fastnet: the airbench94 network (Jordan 2024, arXiv 2404.00498), built to reach 94% on CIFAR-10 in under
ten epochs with its recipe (zoo info fastnet).

- a 2×2 patch-whitening stem: a frozen convolution whose filters are the eigenvectors of the training
  images' patch covariance, scaled by 1/sqrt(eigenvalue) and used with both signs (``init_from_data``);
  only its bias trains (for the first epochs, by the recipe);
- three conv groups (conv, max-pool, BatchNorm, GELU, conv, BatchNorm, GELU) of 64, 256 and 256 channels,
  their convolutions started from a partial identity (Dirac) and their BatchNorm scales frozen at 1;
- a global max-pool and a bias-free linear head whose logits are scaled by 1/9.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (64, 256, 256)
PATCH = 2  # the whitening filters' size
MIN_SIZE = 16  # smaller inputs are centred in a zero frame of this size (three 2× pools need room)


def patch_covariance(images: torch.Tensor, size: int = PATCH, chunk: int = 512) -> torch.Tensor:
    """The (uncentred) covariance of all ``size``×``size`` patches of ``images`` (N, C, H, W), float64,
    indexed like a flattened (C, size, size) patch; accumulated a chunk of images at a time."""
    c = images.shape[1]
    total = torch.zeros(c * size * size, c * size * size, dtype=torch.float64, device=images.device)
    count = 0
    for part in images.split(chunk):
        # (n, c, h', w', size, size) → one row per patch, laid out as (c, size, size)
        patches = part.unfold(2, size, 1).unfold(3, size, 1).permute(0, 2, 3, 1, 4, 5)
        rows = patches.reshape(-1, c * size * size).double()
        total += rows.T @ rows
        count += rows.shape[0]
    return total / count


def whitening_weights(cov: torch.Tensor, channels: int, size: int = PATCH, eps: float = 5e-4) -> torch.Tensor:
    """Filters (2·d, C, size, size), d = C·size², that whiten patches of covariance ``cov``: each eigenvector
    divided by sqrt(its eigenvalue + eps), largest eigenvalue first, then the same filters negated."""
    eigenvalues, eigenvectors = torch.linalg.eigh(cov.double())
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # descending
    filters = (eigenvectors.T / (eigenvalues.clamp(min=0) + eps).sqrt().unsqueeze(1)).view(
        -1, channels, size, size
    )
    return torch.cat([filters, -filters]).float()


class ConvGroup(nn.Module):
    """conv → max-pool → BatchNorm → GELU → conv → BatchNorm → GELU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = frozen_scale_norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding="same", bias=False)
        self.norm2 = frozen_scale_norm(out_ch)
        self.act = nn.GELU()
        for conv in (self.conv1, self.conv2):
            with torch.no_grad():  # a partial identity: the group starts close to passing its input on
                nn.init.dirac_(conv.weight[: conv.weight.shape[1]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


def frozen_scale_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with its scale frozen at 1 (only the shift trains) and fast-moving statistics."""
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad_(False)
    return norm


class FastNet(nn.Module):
    def __init__(self, *, num_classes: int, in_chans: int, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        self.whiten = nn.Conv2d(in_chans, 2 * in_chans * PATCH * PATCH, PATCH, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from the data, never trained
        nn.init.zeros_(self.whiten.bias)
        self.act = nn.GELU()
        channels = [self.whiten.out_channels, *widths]
        self.block1, self.block2, self.block3 = (ConvGroup(a, b) for a, b in itertools.pairwise(channels))
        self.head = nn.Linear(widths[-1], num_classes, bias=False)
        self.scale = 1 / 9

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Set the whitening filters from normalized training images (N, C, H, W)."""
        cov = patch_covariance(images.float(), PATCH)
        self.whiten.weight.copy_(whitening_weights(cov, self.whiten.in_channels, PATCH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = max(MIN_SIZE - x.shape[-2], 0), max(MIN_SIZE - x.shape[-1], 0)
        if pad_h or pad_w:
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        # The stem in fp32 even under autocast: its filters scale the faintest patch components up ~30×,
        # and bf16's 8-bit mantissa would turn the pixels' rounding error into noise on those channels.
        with torch.autocast(x.device.type, enabled=False):
            x = self.act(self.whiten(x.float()))
        x = self.block3(self.block2(self.block1(x)))
        # Global max-pool by max_pool's own backward (routes the gradient to the recorded argmax). Not
        # torch.amax: under torch.compile with bf16 autocast, inductor's amax backward recomputes the GELU
        # output at another precision, matches no element against the saved max and divides by a zero
        # count: every gradient NaN at the first step (torch 2.11 on CUDA, 2.14 on CPU).
        return self.head(F.adaptive_max_pool2d(x, 1).flatten(1)) * self.scale


def fastnet(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """airbench94's network: patch-whitening stem, three conv groups, scaled linear head."""
    return FastNet(num_classes=num_classes, in_chans=in_chans)
