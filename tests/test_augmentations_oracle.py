"""The batch augmentations against torchvision where the semantics coincide.

torchvision's MixUp and CutMix draw one λ (and one box) per batch and pair image i with image i − 1
(``roll(1)``); ours draw them per image and pair by a random permutation. So the comparison feeds our mixing
functions the parameters torchvision drew, taken from the same seed through its public ``make_params``,
with every image given the same λ and box and the ``roll(1)`` partner: the mixing of images, the area
correction after clipping and the label mixing must then agree. The photometric and geometric kernels are
compared image by image with torchvision's functional ops.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from zoo_plugins.augmentations.color import blur_batch, jitter_batch
from zoo_plugins.augmentations.cutmix import cutmix_batch
from zoo_plugins.augmentations.geometric import rotate_batch
from zoo_plugins.augmentations.mixup import mixup_batch

N, K = 6, 10


def roll_partners(n: int) -> torch.Tensor:
    """The partner of image i in torchvision's MixUp/CutMix: ``x.roll(1, 0)[i] == x[i - 1]``."""
    return (torch.arange(n) - 1) % n


@pytest.mark.parametrize("seed", range(5))
def test_mixup_matches_torchvision_for_the_same_lambda_and_pairs(seed):
    x, y = torch.randn(N, 3, 16, 16), torch.randint(0, K, (N,))
    tv = v2.MixUp(alpha=0.4, num_classes=K)
    torch.manual_seed(seed)
    expected_x, expected_y = tv(x, y)
    torch.manual_seed(seed)
    lam = tv.make_params([x])["lam"]
    out_x, out_y = mixup_batch(x, y, torch.full((N,), lam), roll_partners(N), K)
    torch.testing.assert_close(out_x, expected_x)
    torch.testing.assert_close(out_y, expected_y)


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_matches_torchvision_for_the_same_box_and_pairs(seed):
    x, y = torch.randn(N, 3, 16, 16), torch.randint(0, K, (N,))
    tv = v2.CutMix(alpha=1.0, num_classes=K)
    torch.manual_seed(seed)
    expected_x, expected_y = tv(x, y)
    torch.manual_seed(seed)
    params = tv.make_params([x])
    x1, y1, x2, y2 = (torch.full((N,), v) for v in params["box"])
    out_x, out_y = cutmix_batch(x, y, (y1, x1, y2, x2), roll_partners(N), K)
    assert torch.equal(out_x, expected_x)
    torch.testing.assert_close(out_y, expected_y)
    # the partner's label weight is the area pasted after clipping, torchvision's 1 − lam_adjusted
    partner_share = 1.0 - params["lam_adjusted"]
    shares = out_y[torch.arange(N), y[roll_partners(N)]]
    same_label = y == y[roll_partners(N)]
    torch.testing.assert_close(shares[~same_label], torch.full_like(shares[~same_label], partner_share))


def test_cutmix_and_mixup_take_soft_targets_like_torchvision():
    x, soft = torch.randn(N, 3, 8, 8), torch.softmax(torch.randn(N, K), 1)
    tv = v2.MixUp(alpha=1.0, num_classes=K)
    torch.manual_seed(0)
    _, expected_y = tv(x, soft)
    torch.manual_seed(0)
    lam = tv.make_params([x])["lam"]
    torch.testing.assert_close(
        mixup_batch(x, soft, torch.full((N,), lam), roll_partners(N), K)[1], expected_y
    )


def test_rotation_matches_torchvision_rotate_per_image():
    x = torch.randn(4, 3, 12, 20)
    angles = torch.tensor([-30.0, -5.0, 12.5, 45.0])
    expected = torch.stack(
        [
            TF.rotate(img, float(a), interpolation=TF.InterpolationMode.BILINEAR)
            for img, a in zip(x, angles, strict=True)
        ]
    )
    torch.testing.assert_close(rotate_batch(x, angles), expected, atol=1e-5, rtol=1e-5)


def test_blur_matches_torchvision_gaussian_blur_per_image():
    x = torch.randn(4, 3, 16, 16)
    sigmas = torch.tensor([0.3, 0.8, 1.5, 2.0])
    expected = torch.stack(
        [TF.gaussian_blur(img, [7, 7], [float(s), float(s)]) for img, s in zip(x, sigmas, strict=True)]
    )
    torch.testing.assert_close(blur_batch(x, sigmas, 7), expected, atol=1e-5, rtol=1e-5)


def test_colorjitter_matches_torchvision_adjustments_in_pixel_space():
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    pixels = torch.rand(5, 3, 8, 8)
    shift, scale = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    x = (pixels - shift) / scale
    b, c, s = (
        torch.tensor(v)
        for v in ([0.6, 1.0, 1.4, 0.9, 1.2], [1.3, 0.7, 1.0, 1.1, 0.6], [0.0, 1.5, 1.0, 0.8, 1.3])
    )
    expected = []
    for img, fb, fc, fs in zip(pixels, b, c, s, strict=True):
        img = TF.adjust_brightness(img, float(fb))
        img = TF.adjust_contrast(img, float(fc))
        expected.append(TF.adjust_saturation(img, float(fs)))
    out = jitter_batch(x, b, c, s, mean=mean, std=std) * scale + shift
    torch.testing.assert_close(out, torch.stack(expected), atol=1e-5, rtol=1e-5)
