"""The augmentation policies (randaugment, trivialaugment, autoaugment) and their per-image op kernels.

Each kernel is compared with torchvision's ``transforms.v2.functional`` on each uint8 image alone, for a set
of magnitudes spanning torchvision's ranges; the policies' draws are checked against their definitions
with a chi-square test on a large seeded batch.
"""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

import zoo_core
from zoo_core.cli import cli
from zoo_core.data.ops import normalize
from zoo_core.errors import BadInputError
from zoo_plugins.augmentations import ops
from zoo_plugins.augmentations.autoaugment import POLICIES
from zoo_plugins.augmentations.randaugment import RAND_OPS

POLICY_NAMES = ["randaugment", "trivialaugment", "autoaugment"]
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
_ENHANCE = [-0.99, -0.9, -0.5, -0.27, -0.09, 0.0, 0.03, 0.27, 0.5, 0.9, 0.99]
MAGNITUDES = {
    "identity": [0.0],
    "shear_x": [-0.99, -0.3, -0.09, 0.0, 0.05, 0.3, 0.99],
    "shear_y": [-0.99, -0.3, -0.09, 0.0, 0.05, 0.3, 0.99],
    "translate_x": [-32.0, -14.5, -4.35, 0.0, 3.2, 9.9, 32.0],
    "translate_y": [-32.0, -14.5, -4.35, 0.0, 3.2, 9.9, 32.0],
    "rotate": [-135.0, -90.0, -30.0, -9.0, 0.0, 4.5, 45.0, 90.0, 135.0, 180.0],
    "brightness": _ENHANCE,
    "color": _ENHANCE,
    "contrast": _ENHANCE,
    "sharpness": _ENHANCE,
    "posterize": [float(b) for b in range(9)],
    "solarize": [0.0, 0.1, 0.5, 0.7, 1.0],
    "autocontrast": [0.0],
    "equalize": [0.0],
    "invert": [0.0],
}
# chi-square critical values at p = 0.001 (df → value): a correct sampler fails one seed in a thousand
CHI2_999 = {1: 10.83, 13: 34.53, 14: 36.12, 30: 59.70}


def torchvision_op(image: torch.Tensor, name: str, m: float) -> torch.Tensor:
    """torchvision's op ``name`` at magnitude ``m``, as its policies call it."""
    nearest = InterpolationMode.NEAREST
    shear = math.degrees(math.atan(m))
    calls = {
        "identity": lambda: image,
        "shear_x": lambda: TF.affine(
            image,
            angle=0.0,
            translate=[0, 0],
            scale=1.0,
            shear=[shear, 0.0],
            interpolation=nearest,
            center=[0, 0],
        ),
        "shear_y": lambda: TF.affine(
            image,
            angle=0.0,
            translate=[0, 0],
            scale=1.0,
            shear=[0.0, shear],
            interpolation=nearest,
            center=[0, 0],
        ),
        "translate_x": lambda: TF.affine(
            image, angle=0.0, translate=[int(m), 0], scale=1.0, shear=[0.0, 0.0], interpolation=nearest
        ),
        "translate_y": lambda: TF.affine(
            image, angle=0.0, translate=[0, int(m)], scale=1.0, shear=[0.0, 0.0], interpolation=nearest
        ),
        "rotate": lambda: TF.rotate(image, angle=m, interpolation=nearest),
        "brightness": lambda: TF.adjust_brightness(image, 1.0 + m),
        "color": lambda: TF.adjust_saturation(image, 1.0 + m),
        "contrast": lambda: TF.adjust_contrast(image, 1.0 + m),
        "sharpness": lambda: TF.adjust_sharpness(image, 1.0 + m),
        "posterize": lambda: TF.posterize(image, int(m)),
        "solarize": lambda: TF.solarize(image, 255.0 * m),
        "autocontrast": lambda: TF.autocontrast(image),
        "equalize": lambda: TF.equalize(image),
        "invert": lambda: TF.invert(image),
    }
    return calls[name]()


def oracle_images(channels: int = 3, size: tuple[int, int] = (32, 32)) -> torch.Tensor:
    """uint8 test images: noise, a low-contrast patch range, and flat channels (autocontrast, equalize)."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (4, channels, *size), generator=g, dtype=torch.uint8)
    low = torch.randint(90, 140, (2, channels, *size), generator=g, dtype=torch.uint8)
    flat = torch.full((1, channels, *size), 77, dtype=torch.uint8)
    ramp = torch.linspace(0, 255, size[1]).to(torch.uint8).expand(1, channels, *size)
    return torch.cat([noise, low, flat, ramp])


def max_difference(name: str, images: torch.Tensor) -> float:
    """The largest |zoo − torchvision| in grey levels over every image × magnitude, one batched call."""
    mags = torch.tensor(MAGNITUDES[name], dtype=torch.float32)
    batch = images.repeat_interleave(len(mags), 0)
    per_image = mags.repeat(len(images))
    out = ops.KERNELS[name](batch.float(), per_image)
    expected = torch.stack(
        [torchvision_op(img, name, float(m)) for img, m in zip(batch, per_image, strict=True)]
    )
    assert torch.equal(out, out.round()), "the kernel left a fraction of a level"
    return (out - expected.float()).abs().max().item()


# -- the kernels against torchvision -----------------------------------------------------------------


@pytest.mark.parametrize("name", ops.OPS)
def test_each_op_on_a_batch_equals_torchvision_on_each_image(name):
    assert max_difference(name, oracle_images()) <= 1


@pytest.mark.parametrize("name", ops.OPS)
def test_each_op_matches_torchvision_on_non_square_gray_images(name):
    assert max_difference(name, oracle_images(channels=1, size=(24, 40))) <= 1


def test_ops_run_once_per_subset_and_leave_undrawn_images_alone():
    images = oracle_images().float()
    op = torch.tensor([-1, 0, 5, 5, 11, 13, 14, -1])  # none, identity, rotate ×2, solarize, equalize, invert
    magnitude = torch.tensor([0.0, 0.0, 30.0, -45.0, 0.5, 0.0, 0.0, 0.0])
    out = ops.apply_ops(images.clone(), op, magnitude, ops.OPS)
    for i, (k, m) in enumerate(zip(op.tolist(), magnitude.tolist(), strict=True)):
        if k < 0:
            assert torch.equal(out[i], images[i])
        else:
            expected = torchvision_op(images[i].to(torch.uint8), ops.OPS[k], m).float()
            assert torch.equal(out[i], expected), ops.OPS[k]


# -- the policies ------------------------------------------------------------------------------------


def build(name: str, **options):
    return zoo_core.create_augmentation(name, num_classes=10, **options)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_same_seed_gives_the_same_batch_and_another_seed_another(name):
    x = normalize(oracle_images().repeat(4, 1, 1, 1), MEAN, STD)
    y = torch.arange(len(x))
    aug = build(name, mean=MEAN, std=STD)
    first, labels = aug(x, y, torch.Generator().manual_seed(3))
    again, _ = aug(x, y, torch.Generator().manual_seed(3))
    other, _ = aug(x, y, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(labels, y) and first.shape == x.shape and first.dtype == x.dtype


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_a_policy_keeps_uint8_levels_and_untouched_images_bit_for_bit(name):
    u = oracle_images().repeat(8, 1, 1, 1)
    x = normalize(u, MEAN, STD)
    out, _ = build(name, mean=MEAN, std=STD)(x, torch.zeros(len(x), dtype=torch.long), torch.Generator())
    levels = (out * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)) * 255
    assert (levels - levels.round()).abs().max() < 1e-3
    off, _ = build(name, p=0.0, mean=MEAN, std=STD)(x, torch.zeros(len(x), dtype=torch.long))
    assert torch.equal(off, x)
    out_u8, _ = build(name)(u, torch.zeros(len(u), dtype=torch.long), torch.Generator().manual_seed(0))
    assert out_u8.dtype == torch.uint8


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_a_channels_last_batch_gives_the_same_images_in_its_own_layout(name):
    # the trainer hands a CPU batch over as channels_last; the policy works on a contiguous copy
    x = normalize(oracle_images().repeat(8, 1, 1, 1), MEAN, STD)
    y = torch.zeros(len(x), dtype=torch.long)
    aug = build(name, mean=MEAN, std=STD)
    flat, _ = aug(x, y, torch.Generator().manual_seed(5))
    last, _ = aug(x.contiguous(memory_format=torch.channels_last), y, torch.Generator().manual_seed(5))
    assert last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(last, flat)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_a_bfloat16_batch_is_worked_on_in_float32_and_cast_back(name):
    x = normalize(oracle_images().repeat(8, 1, 1, 1), MEAN, STD).bfloat16()
    y = torch.zeros(len(x), dtype=torch.long)
    aug = build(name, mean=MEAN, std=STD)
    wide, _ = aug(x.float(), y, torch.Generator().manual_seed(6))
    narrow, _ = aug(x, y, torch.Generator().manual_seed(6))
    assert narrow.dtype == torch.bfloat16
    assert torch.equal(narrow, wide.bfloat16())
    assert not torch.equal(narrow, x)


def test_two_steps_compose_in_order_and_an_image_keeps_its_place():
    # randaugment n=2 on images that each draw invert then posterize(4): 255 − v, then the top 4 bits
    u = oracle_images()
    op_invert, op_post = ops.OPS.index("invert"), ops.OPS.index("posterize")
    from zoo_plugins.augmentations._policy import apply_policy

    n = len(u)
    steps = [
        (torch.full((n,), op_invert), torch.zeros(n)),
        (torch.where(torch.arange(n) % 2 == 0, op_post, -1), torch.full((n,), 4.0)),
    ]
    out = apply_policy(u, steps, ops.OPS, None, None)
    inverted = 255 - u.int()
    expected = torch.where((torch.arange(n) % 2 == 0).view(-1, 1, 1, 1), inverted // 16 * 16, inverted)
    assert torch.equal(out, expected.to(torch.uint8))


def test_equalize_counts_the_same_without_bincount():
    # the GPU's way (index_add_ into a tensor of the known size, no read back) against bincount
    index = torch.randint(0, 3 * 256, (5000,), dtype=torch.int32, generator=torch.Generator().manual_seed(2))
    counted = ops._histogram(index, 3 * 256, torch.float64, bincount=False)
    assert torch.equal(counted, ops._histogram(index, 3 * 256, torch.float64, bincount=True))
    assert counted.sum() == 5000 and counted.dtype == torch.float64


def test_the_masked_ops_equal_the_grouped_ones_bit_for_bit():
    # every op on the whole batch, each image keeping its own: the GPU's way, against the CPU's groups
    images = oracle_images().repeat(4, 1, 1, 1).float()
    n = len(images)
    generator = torch.Generator().manual_seed(11)
    op = (torch.arange(n) % (len(ops.OPS) + 1) - 1)[torch.randperm(n, generator=generator)]  # all, and none
    magnitude = (torch.rand(n, generator=generator) * 2 - 1) * 0.9
    grouped = ops.apply_ops(images.clone(), op, magnitude, ops.OPS)
    masked = ops.apply_masked(images.clone(), op, magnitude, ops.OPS)
    assert torch.equal(masked, grouped) and not torch.equal(masked, images)


@pytest.mark.parametrize("name", POLICY_NAMES)
@pytest.mark.parametrize("kind", ["float32", "channels_last", "uint8", "bfloat16"])
def test_a_policy_gives_the_same_batch_on_the_whole_batch_as_by_groups(name, kind):
    from zoo_plugins.augmentations._policy import apply_policy

    u = oracle_images().repeat(16, 1, 1, 1)
    x = {
        "float32": normalize(u, MEAN, STD),
        "channels_last": normalize(u, MEAN, STD).contiguous(memory_format=torch.channels_last),
        "uint8": u,
        "bfloat16": normalize(u, MEAN, STD).bfloat16(),
    }[kind]
    aug = build(name, mean=MEAN, std=STD)
    steps = aug.draw(len(x), (32, 32), x.device, torch.Generator().manual_seed(7))
    mean, std = (None, None) if kind == "uint8" else (MEAN, STD)
    grouped = apply_policy(x, steps, aug.ops, mean, std, grouped=True)
    masked = apply_policy(x, steps, aug.ops, mean, std, grouped=False)
    assert masked.dtype == x.dtype and masked.stride() == x.stride()
    assert torch.equal(masked, grouped) and not torch.equal(masked, x)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_off_the_cpu_a_policy_never_reads_the_device_back(name):
    # meta tensors hold no data: any read back to the host (.tolist(), nonzero, bincount's size) raises
    from zoo_plugins.augmentations._policy import apply_policy

    aug = build(name, mean=MEAN, std=STD)
    x = torch.empty(64, 3, 32, 32, device="meta").contiguous(memory_format=torch.channels_last)
    out, labels = aug(x, torch.empty(64, dtype=torch.long, device="meta"))
    assert (
        labels.device.type == "meta"
        and out.shape == x.shape
        and out.is_contiguous(memory_format=torch.channels_last)
    )
    steps = aug.draw(64, (32, 32), x.device, None)
    with pytest.raises((NotImplementedError, RuntimeError)):  # the CPU's grouping does read back
        apply_policy(x, steps, aug.ops, MEAN, STD, grouped=True)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_off_the_cpu_a_batch_too_large_for_the_whole_batch_way_goes_by_groups(name):
    from zoo_plugins.augmentations._policy import MASKED_MAX

    aug = build(name, mean=MEAN, std=STD)
    side = 224
    n = MASKED_MAX // (3 * side * side) + 1  # just past the limit (meta tensors hold no data)
    x = torch.empty(n, 3, side, side, device="meta")
    with pytest.raises((NotImplementedError, RuntimeError)):  # grouping reads the group sizes back
        aug(x, torch.empty(n, dtype=torch.long, device="meta"))
    out, _ = aug(x[: n - 1], torch.empty(n - 1, dtype=torch.long, device="meta"))  # at the limit: whole
    assert out.shape == (n - 1, 3, side, side)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_on_cuda_a_policy_makes_the_host_wait_for_nothing(name, no_host_sync):
    aug = build(name, mean=MEAN, std=STD)
    x = normalize(oracle_images().repeat(16, 1, 1, 1), MEAN, STD).cuda()
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(len(x), dtype=torch.long, device="cuda")
    generator = torch.Generator(device="cuda").manual_seed(0)
    first, _ = aug(x, y, generator)  # the per-device constants are made (and copied) once, here
    with no_host_sync():
        again, _ = aug(x, y, generator.manual_seed(0))
    steps = aug.draw(len(x), (32, 32), x.device, generator.manual_seed(0))
    from zoo_plugins.augmentations._policy import apply_policy

    grouped = apply_policy(x, steps, aug.ops, MEAN, STD, grouped=True)
    assert torch.equal(again, first) and torch.equal(again, grouped)


def test_trivialaugment_image_alone_equals_torchvision_for_its_drawn_op():
    aug = build("trivialaugment")
    u = oracle_images().repeat(16, 1, 1, 1)
    (step,) = aug.draw(len(u), (32, 32), u.device, torch.Generator().manual_seed(1))
    out, _ = aug(u, torch.zeros(len(u), dtype=torch.long), torch.Generator().manual_seed(1))
    for i in range(len(u)):
        op, m = RAND_OPS[int(step[0][i])], float(step[1][i])
        assert torch.equal(out[i], torchvision_op(u[i], op, m)), (op, m)


def chi_square(observed: torch.Tensor, expected: torch.Tensor) -> float:
    return float(((observed - expected) ** 2 / expected).sum())


def test_randaugment_draws_ops_uniformly_signs_evenly_and_magnitude_m():
    n = 200_000
    (op, magnitude), _ = build("randaugment", n=2, m=9).draw(
        n, (32, 32), torch.device("cpu"), torch.Generator().manual_seed(0)
    )
    counts = torch.bincount(op, minlength=len(RAND_OPS)).double()
    assert chi_square(counts, torch.full_like(counts, n / len(RAND_OPS))) < CHI2_999[13]
    rotate = magnitude[op == RAND_OPS.index("rotate")]
    assert rotate.abs().unique().tolist() == [pytest.approx(9.0)]  # bin 9 of linspace(0, 30, 31)
    negative = (rotate < 0).sum().double()
    halves = torch.stack([negative, len(rotate) - negative])
    assert chi_square(halves, torch.full_like(halves, len(rotate) / 2)) < CHI2_999[1]
    bits = magnitude[op == RAND_OPS.index("posterize")].unique().tolist()
    assert bits == [7.0]  # round(8 − 9 / 7.5)


def test_randaugment_mstd_spreads_the_bin_like_a_clipped_gaussian():
    n = 100_000
    (op, magnitude), _ = build("randaugment", m=9, mstd=3.0, bins=31).draw(
        n, (32, 32), torch.device("cpu"), torch.Generator().manual_seed(0)
    )
    bins = magnitude[op == RAND_OPS.index("rotate")].abs() / 1.0  # rotate: 1° per bin
    assert abs(bins.mean().item() - 9.0) < 0.1 and abs(bins.std().item() - 3.0) < 0.1


def test_trivialaugment_draws_ops_and_bins_uniformly():
    n = 200_000
    ((op, magnitude),) = build("trivialaugment").draw(
        n, (32, 32), torch.device("cpu"), torch.Generator().manual_seed(0)
    )
    counts = torch.bincount(op, minlength=len(RAND_OPS)).double()
    assert chi_square(counts, torch.full_like(counts, n / len(RAND_OPS))) < CHI2_999[13]
    rotate = magnitude[op == RAND_OPS.index("rotate")].abs()
    bins = torch.bincount((rotate / 4.5).round().long(), minlength=31).double()  # linspace(0, 135, 31)
    assert chi_square(bins, torch.full_like(bins, len(rotate) / 31)) < CHI2_999[30]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_autoaugment_applies_each_op_as_often_as_its_sub_policies_say(policy):
    n = 200_000
    steps = build("autoaugment", policy=policy).draw(
        n, (32, 32), torch.device("cpu"), torch.Generator().manual_seed(0)
    )
    observed = sum(torch.bincount(op + 1, minlength=len(ops.OPS) + 1).double() for op, _ in steps)
    expected = torch.zeros(len(ops.OPS) + 1, dtype=torch.float64)
    for pair in POLICIES[policy]:
        for name, prob, _ in pair:
            expected[ops.OPS.index(name) + 1] += 2 * n / len(POLICIES[policy]) * prob / 2
            expected[0] += 2 * n / len(POLICIES[policy]) * (1 - prob) / 2
    used = expected > 0
    dof = int(used.sum()) - 1
    assert chi_square(observed[used], expected[used]) < CHI2_999.get(dof, 36.12 + 2 * (dof - 14))
    assert observed[~used].sum() == 0


# -- registration and the command line ---------------------------------------------------------------


def test_policies_are_registered_as_batch_augmentations_with_documented_options(catalog):
    import inspect

    for name in POLICY_NAMES:
        entry = catalog.augmentations.get(name)
        assert entry.meta["level"] == "batch" and entry.meta["soft_targets"] is False
        settable = set(inspect.signature(entry.load()).parameters) - {"num_classes", "mean", "std"}
        assert set(entry.meta["options"]) == settable


def test_zoo_info_randaugment_lists_its_options():
    result = CliRunner().invoke(cli, ["info", "randaugment"])
    assert result.exit_code == 0
    for option in ("n:", "m:", "mstd:", "bins:", "p:"):
        assert option in result.output


@pytest.mark.parametrize(
    "spec",
    [
        "randaugment:m=40",
        "randaugment:n=-1",
        "randaugment:mstd=-1",
        "randaugment:mag=3",
        "autoaugment:policy=mnist",
        "trivialaugment:bins=1",
        "autoaugment:p=2",
    ],
)
def test_bad_options_are_bad_input(spec):
    from zoo_core.augment import build_augmentations

    with pytest.raises(BadInputError):
        build_augmentations([spec], num_classes=10)


def test_bad_option_on_the_command_line_exits_2(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "digits",
            "lenet",
            "--aug",
            "randaugment:m=99",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 2 and "randaugment" in result.output
