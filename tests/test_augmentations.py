"""Properties of the built-in batch augmentations, on the CPU and on CUDA where there is one."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch

import zoo_core
from zoo_core.contracts import ContractError
from zoo_plugins.augmentations.mosaic import Mosaic

BATCH_AUGS = [
    "mixup",
    "cutmix",
    "cutout",
    "mosaic",
    "samplepairing",
    "flip",
    "crop",
    "rotate",
    "colorjitter",
    "blur",
]
MIXING = {"mixup", "cutmix", "mosaic"}
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def seeded(device: str, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def build(name: str, num_classes: int = 10, **options):
    return zoo_core.create_augmentation(name, num_classes=num_classes, **options)


def constant_images(n: int, device: str, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Image k is the constant k + 1 with label k, so every output pixel tells which source it came from."""
    values = torch.arange(1, n + 1, dtype=torch.float32, device=device)
    return values.view(n, 1, 1, 1).expand(n, 3, size, size).contiguous(), torch.arange(n, device=device)


def pixel_shares(x: torch.Tensor, n: int) -> torch.Tensor:
    """(N, n): the share of each output image's pixels that holds the value of source k (k + 1)."""
    values = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    return (x[:, 0, :, :, None] == values).float().mean((1, 2))


# -- registration ----------------------------------------------------------------------------------


def test_every_batch_augmentation_is_registered_with_its_metadata(catalog):
    for name in BATCH_AUGS:
        entry = catalog.augmentations.get(name)
        assert entry.meta["level"] == "batch"
        assert entry.meta["soft_targets"] is (name in MIXING)
        assert entry.summary


def test_every_option_a_user_can_set_is_documented(catalog):
    for name in BATCH_AUGS:
        entry = catalog.augmentations.get(name)
        settable = set(inspect.signature(entry.load()).parameters) - {"num_classes", "mean", "std"}
        assert set(entry.meta["options"]) == settable, name
        assert all(text.strip() for text in entry.meta["options"].values())


def test_registering_the_augmentations_imports_no_torch():
    code = "import sys, zoo_plugins.augmentations; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- contract shared by all ------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("name", BATCH_AUGS)
def test_keeps_shape_and_gives_soft_targets_summing_to_one_when_mixing(name, n, device):
    x, y = torch.randn(n, 3, 32, 32, device=device), torch.randint(0, 10, (n,), device=device)
    out_x, out_y = build(name)(x, y, seeded(device))
    assert out_x.shape == x.shape and out_x.dtype == x.dtype and out_x.device == x.device
    if name in MIXING:
        assert out_y.shape == (n, 10) and out_y.dtype == torch.float32
        torch.testing.assert_close(out_y.sum(1), torch.ones(n, device=device))
        assert (out_y >= 0).all()
    else:
        assert torch.equal(out_y, y)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", BATCH_AUGS)
def test_the_same_seed_repeats_exactly_and_another_seed_differs(name, device):
    aug = build(name)
    x, y = torch.randn(8, 3, 32, 32, device=device), torch.randint(0, 10, (8,), device=device)
    first, again, other = (aug(x, y, seeded(device, seed)) for seed in (3, 3, 4))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("name", BATCH_AUGS)
def test_an_augmentation_never_reads_the_batch_back_to_the_host(name):
    # meta tensors hold no data: .item(), .tolist(), nonzero, a tensor in an `if` would raise here, as each
    # would make a GPU's training step wait for the device
    x = torch.empty(16, 3, 32, 32, device="meta").contiguous(memory_format=torch.channels_last)
    out_x, out_y = build(name)(x, torch.empty(16, dtype=torch.long, device="meta"))
    assert out_x.shape == x.shape and out_y.device.type == "meta"
    with pytest.raises((NotImplementedError, RuntimeError)):  # the check itself: a read back does raise
        x.sum().item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", BATCH_AUGS)
def test_on_cuda_an_augmentation_makes_the_host_wait_for_nothing(name, no_host_sync):
    aug = build(name)
    x = torch.randn(64, 3, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,), device="cuda")
    first = aug(x, y, seeded("cuda", 3))  # constants are made and copied to the device once, here
    with no_host_sync():
        again = aug(x, y, seeded("cuda", 3))
    assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])


@pytest.mark.parametrize("name", BATCH_AUGS)
def test_accepts_soft_targets_from_an_earlier_augmentation(name):
    x = torch.randn(5, 3, 32, 32)
    y = torch.softmax(torch.randn(5, 10), 1)
    _, out_y = build(name)(x, y, seeded("cpu"))
    assert out_y.shape == (5, 10)
    torch.testing.assert_close(out_y.sum(1), torch.ones(5))
    if name not in MIXING:
        assert torch.equal(out_y, y)


@pytest.mark.parametrize("name", BATCH_AUGS)
def test_p_zero_leaves_every_image_untouched(name):
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    out_x, out_y = build(name, p=0.0)(x, y, seeded("cpu"))
    assert torch.equal(out_x, x)
    expected = torch.nn.functional.one_hot(y, 10).float() if name in MIXING else y
    assert torch.equal(out_y, expected)


@pytest.mark.parametrize("name", ["mixup", "cutmix", "cutout", "mosaic", "samplepairing", "rotate", "blur"])
def test_p_is_drawn_per_image(name):
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    out_x, _ = build(name, p=0.5)(x, y, seeded("cpu"))
    untouched = (out_x == x).flatten(1).all(1)
    assert 10 < int(untouched.sum()) < 54


@pytest.mark.parametrize("name", BATCH_AUGS)
def test_keeps_a_channels_last_batch_working(name):
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    out_x, _ = build(name)(x, torch.randint(0, 10, (4,)), seeded("cpu"))
    assert out_x.shape == x.shape


# -- label mass equals pixel share -----------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["cutmix", "mosaic"])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_label_mass_of_each_source_equals_its_share_of_output_pixels(name, n, device):
    x, y = constant_images(n, device)
    for seed in range(5):
        out_x, out_y = build(name, num_classes=n)(x, y, seeded(device, seed))
        torch.testing.assert_close(out_y, pixel_shares(out_x, n))


@pytest.mark.parametrize("name", ["cutmix", "mosaic"])
def test_soft_input_targets_mix_in_the_proportions_of_the_output_image(name):
    x, _ = constant_images(6, "cpu")
    soft = torch.softmax(torch.randn(6, 10), 1)  # as if an earlier augmentation had mixed them
    out_x, out_y = build(name)(x, soft, seeded("cpu"))
    torch.testing.assert_close(out_y, pixel_shares(out_x, 6) @ soft)


def test_cutmix_pastes_one_box_from_one_partner_per_image():
    x, y = constant_images(8, "cpu")
    out_x, _ = build("cutmix", num_classes=8)(x, y, seeded("cpu", 1))
    for img, own in zip(out_x[:, 0], range(1, 9), strict=True):
        foreign = img != own
        if foreign.any():
            assert len(img[foreign].unique()) == 1
            rows, cols = foreign.nonzero().unbind(1)
            box = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert (box != own).all()  # the pasted pixels fill a rectangle


@pytest.mark.parametrize("device", DEVICES)
def test_mixup_mixes_images_and_labels_by_the_same_weight(device):
    x, y = constant_images(8, device)
    out_x, out_y = build("mixup", num_classes=8, alpha=0.4)(x, y, seeded(device))
    values = torch.arange(1, 9, dtype=torch.float32, device=device)
    torch.testing.assert_close(out_x[:, :, 0, 0], (out_y @ values)[:, None].expand(8, 3))
    assert (out_x == out_x[:, :1, :1, :1]).all()  # one blend weight per image


def test_mixup_weights_follow_beta_alpha_alpha():
    from zoo_plugins.augmentations._random import beta

    alpha = 0.2
    lam = beta(alpha, 40_000, torch.device("cpu"), seeded("cpu")).double()
    assert abs(lam.mean().item() - 0.5) < 0.01
    assert abs(lam.var().item() - 1 / (4 * (2 * alpha + 1))) < 0.01
    assert lam.min() >= 0 and lam.max() <= 1 and not lam.isnan().any()


def test_beta_sampling_survives_a_tiny_alpha():
    from zoo_plugins.augmentations._random import beta

    lam = beta(0.01, 10_000, torch.device("cpu"), seeded("cpu"))
    assert not lam.isnan().any() and lam.min() >= 0 and lam.max() <= 1


# -- cutout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("size", "option", "side"), [(32, None, 16), (64, None, 32), (32, 10, 10), (32, 7, 7)]
)
def test_cutout_zeroes_exactly_one_clipped_square_per_image(size, option, side, device):
    x = torch.rand(16, 3, size, size, device=device) + 1.0  # no zero before cutout
    y = torch.randint(0, 10, (16,), device=device)
    options = {} if option is None else {"size": option}
    out_x, out_y = build("cutout", **options)(x, y, seeded(device))
    assert torch.equal(out_y, y)
    for before, after in zip(x, out_x, strict=True):
        zero = (after == 0).all(0)
        assert torch.equal(after[:, ~zero], before[:, ~zero])  # nothing else changed
        rows, cols = zero.nonzero().unbind(1)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert zero[top:bottom, left:right].all() and int(zero.sum()) == (bottom - top) * (right - left)
        for lo, hi in ((top, bottom), (left, right)):
            assert hi - lo == side or (hi - lo < side and (lo == 0 or hi == size))  # short only if clipped


def test_cutout_squares_reach_every_part_of_the_image():
    x = torch.ones(512, 3, 32, 32)
    out_x, _ = build("cutout")(x, torch.zeros(512, dtype=torch.long), seeded("cpu"))
    assert (out_x == 0).all(1).any(0).all()  # centres anywhere, corners included


# -- mosaic ----------------------------------------------------------------------------------------


def test_mosaic_tiles_show_the_central_crop_of_four_sources():
    x = torch.randn(5, 3, 32, 32)
    out_x, out_y = Mosaic(num_classes=10, margin=0.5)(x, torch.arange(5), seeded("cpu"))
    # margin 0.5 pins the centre to the middle: four 16×16 tiles, each the central 16×16 of its source.
    centre = x[:, :, 8:24, 8:24]
    torch.testing.assert_close(out_x[:, :, :16, :16], centre, rtol=0, atol=0)
    for tile in (out_x[:, :, :16, 16:], out_x[:, :, 16:, :16], out_x[:, :, 16:, 16:]):
        matches = (tile[:, None] == centre[None]).flatten(2).all(2)
        assert (matches.sum(1) == 1).all()  # every tile is one source's centre
    assert torch.allclose(out_y.sum(1), torch.ones(5))


def test_mosaic_rejects_a_margin_outside_0_to_half():
    with pytest.raises(zoo_core.BadInputError, match="'mosaic': option 'margin'"):
        build("mosaic", margin=0.7)


# -- samplepairing, flip, crop, rotate -------------------------------------------------------------


def test_samplepairing_averages_each_image_with_one_of_the_batch():
    x, y = torch.randn(7, 3, 8, 8), torch.arange(7)
    out_x, out_y = build("samplepairing")(x, y, seeded("cpu"))
    assert torch.equal(out_y, y)
    averages = (x[:, None] + x[None]) / 2  # [i, j]: image i averaged with j
    assert ((averages == out_x[:, None]).flatten(2).all(2)).any(1).all()


def test_flip_mirrors_some_images_and_leaves_the_rest():
    x = torch.randn(64, 3, 8, 8)
    out_x, _ = build("flip")(x, torch.zeros(64, dtype=torch.long), seeded("cpu"))
    same = (out_x == x).flatten(1).all(1)
    mirrored = (out_x == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and mirrored.any() and same.any()


def test_crop_translates_each_image_by_at_most_padding():
    x = torch.randn(16, 3, 8, 8) + 10  # padding 0 can not be mistaken for content
    out_x, _ = build("crop", padding=2)(x, torch.zeros(16, dtype=torch.long), seeded("cpu"))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    windows = [padded[:, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
    found = torch.stack([(out_x == w).flatten(1).all(1) for w in windows], 1)
    assert found.any(1).all()


def test_rotate_by_zero_degrees_is_the_identity():
    x = torch.randn(4, 3, 16, 16)
    out_x, _ = build("rotate", degrees=0)(x, torch.zeros(4, dtype=torch.long), seeded("cpu"))
    torch.testing.assert_close(out_x, x)


def test_rotation_by_90_degrees_is_rot90():
    from zoo_plugins.augmentations.geometric import rotate_batch

    x = torch.randn(3, 3, 8, 8)
    torch.testing.assert_close(rotate_batch(x, torch.full((3,), 90.0)), torch.rot90(x, 1, (2, 3)))


# -- colour ----------------------------------------------------------------------------------------


def test_colorjitter_with_zero_strength_changes_nothing():
    x = torch.randn(4, 3, 8, 8) * 0.2
    aug = build("colorjitter", brightness=0, contrast=0, saturation=0)
    torch.testing.assert_close(aug(x, torch.zeros(4, dtype=torch.long), seeded("cpu"))[0], x)


def test_colorjitter_varies_the_factors_per_image():
    x = torch.rand(1, 3, 8, 8).expand(6, 3, 8, 8).contiguous()
    out_x, _ = build("colorjitter")(x, torch.zeros(6, dtype=torch.long), seeded("cpu"))
    assert len({tuple(img.flatten().tolist()) for img in out_x}) == 6


def test_blur_gives_a_smoother_image_and_keeps_a_constant_one():
    x = torch.randn(4, 3, 32, 32)
    out_x, _ = build("blur", sigma_min=1.0, sigma_max=2.0)(x, torch.zeros(4, dtype=torch.long), seeded("cpu"))
    assert out_x.diff(dim=-1).abs().mean() < x.diff(dim=-1).abs().mean() / 2
    flat = torch.full((2, 3, 8, 8), 0.7)
    torch.testing.assert_close(build("blur")(flat, torch.zeros(2, dtype=torch.long))[0], flat)


def test_blur_kernel_fits_a_tiny_image():
    x = torch.randn(2, 1, 3, 3)
    out_x, _ = build("blur", sigma_max=3.0)(x, torch.zeros(2, dtype=torch.long), seeded("cpu"))
    assert out_x.shape == x.shape


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("mixup", {"alpha": 0.0}, "'mixup': option 'alpha' must be > 0"),
        ("cutmix", {"p": 1.5}, "'cutmix': option 'p' must be between 0 and 1"),
        ("cutout", {"size": 0}, "'cutout': option 'size' must be a positive number of pixels"),
        ("rotate", {"padding_mode": "wrap"}, "'rotate': option 'padding_mode' must be zeros or border"),
        ("blur", {"kernel_size": 4}, "'blur': option 'kernel_size' must be a positive odd number"),
        ("blur", {"sigma_min": 2.0, "sigma_max": 1.0}, "'blur': option 'sigma_max' must be >= sigma_min"),
        ("colorjitter", {"contrast": -0.1}, "'colorjitter': option 'contrast' must be >= 0"),
        ("crop", {"padding": -1}, "'crop': option 'padding' must be >= 0"),
    ],
)
def test_a_bad_option_value_names_the_augmentation_and_the_option(name, options, message):
    with pytest.raises(zoo_core.BadInputError, match=message):
        build(name, **options)


def test_targets_of_the_wrong_width_are_refused():
    with pytest.raises(ContractError, match=r"soft targets \(2, 10\)"):
        build("mixup")(torch.randn(2, 3, 8, 8), torch.rand(2, 7))
