"""Built-in batch augmentations: whole batches on their device, per-image randomness from one generator.

This hook module only registers names, builder strings and metadata; torch is imported when one is built.
Every augmentation has an option ``p``: the probability that each image is augmented, drawn independently
per image (timm's Mixup in ``elem`` mode, torchvision's per-sample transforms). An image that is not drawn
is left exactly as it was. The policies (randaugment, trivialaugment, autoaugment) share the per-image
operation kernels of ``ops``, each operation run once on the sub-batch of images that drew it.
"""

from __future__ import annotations

from zoo_core import Registry, hookimpl

_MODULE = "zoo_plugins.augmentations"
_P = "probability that each image is augmented (drawn per image), default 1.0"

# name, builder, summary, soft_targets, options (each documented for `zoo info NAME`)
_AUGMENTATIONS = [
    (
        "mixup",
        "mixup:MixUp",
        "Mixup (Zhang et al. 2018): blend each image with a random partner, labels alike",
        True,
        {
            "alpha": "Beta(α, α) concentration of the blend weight λ, drawn per image, default 1.0",
            "p": _P,
        },
    ),
    (
        "cutmix",
        "cutmix:CutMix",
        "CutMix (Yun et al. 2019): paste a box from a random partner, labels by pasted area",
        True,
        {
            "alpha": "Beta(α, α) concentration of λ; the box covers 1 − λ of the image before clipping, "
            "and the label weight is the area actually pasted, default 1.0",
            "p": _P,
        },
    ),
    (
        "cutout",
        "cutout:Cutout",
        "Cutout (DeVries & Taylor 2017): zero one square per image, centre anywhere; labels unchanged",
        False,
        {
            "size": "side of the square in pixels, default half the shorter image side (16 at 32×32)",
            "p": _P,
        },
    ),
    (
        "mosaic",
        "mosaic:Mosaic",
        "Mosaic: tile four images around a random centre into one, labels by tile area",
        True,
        {
            "margin": "the centre is drawn from the middle (1 − 2·margin) of each side, 0–0.5, default 0.25",
            "p": _P,
        },
    ),
    (
        "samplepairing",
        "samplepairing:SamplePairing",
        "SamplePairing (Inoue 2018): average each image with a random partner, keep its own label",
        False,
        {"p": _P},
    ),
    (
        "flip",
        "geometric:Flip",
        "Horizontal flip of each image with probability p",
        False,
        {"p": "probability that each image is mirrored, default 0.5"},
    ),
    (
        "crop",
        "geometric:Crop",
        "Random crop: pad by `padding` pixels and take a random window of the original size",
        False,
        {
            "padding": "pixels added on each side, so the shift is up to ±padding, default 4",
            "fill": "value of the padding in the normalized batch (0 is the data set mean), default 0.0",
            "p": _P,
        },
    ),
    (
        "rotate",
        "geometric:Rotate",
        "Random rotation by an angle in [−degrees, degrees] per image, bilinear",
        False,
        {
            "degrees": "largest angle in degrees, default 15",
            "padding_mode": "what fills the corners: zeros (the data set mean), border or reflection; "
            "default zeros",
            "p": _P,
        },
    ),
    (
        "colorjitter",
        "color:ColorJitter",
        "Colour jitter: random brightness, contrast and saturation per image",
        False,
        {
            "brightness": "factor drawn from [max(0, 1 − v), 1 + v], default 0.4 (0: off)",
            "contrast": "factor drawn from [max(0, 1 − v), 1 + v], default 0.4 (0: off)",
            "saturation": "factor drawn from [max(0, 1 − v), 1 + v], default 0.4 (0: off)",
            "p": _P,
        },
    ),
    (
        "blur",
        "color:GaussianBlur",
        "Gaussian blur with a random sigma per image",
        False,
        {
            "sigma_min": "smallest sigma in pixels, default 0.1",
            "sigma_max": "largest sigma in pixels, default 2.0",
            "kernel_size": "odd kernel size, default 2·⌈3·sigma_max⌉ + 1 (cut to fit the image)",
            "p": _P,
        },
    ),
    (
        "randaugment",
        "randaugment:RandAugment",
        "RandAugment (Cubuk et al. 2020): n random ops per image, each image its own, magnitude m",
        False,
        {
            "n": "operations applied in sequence to each image, each drawn per image, default 2",
            "m": "magnitude bin, 0 to bins − 1 (torchvision's scale; timm's m9 is bins=11,m=9), default 9",
            "mstd": "std of a Gaussian around m, drawn per image and op, clipped to the bins (timm's mstd), "
            "default 0",
            "bins": "number of magnitude bins spanning each op's range, default 31",
            "p": _P,
        },
    ),
    (
        "trivialaugment",
        "trivialaugment:TrivialAugment",
        "TrivialAugment Wide (Müller & Hutter 2021): one random op per image at a random magnitude",
        False,
        {
            "bins": "number of magnitude bins over torchvision's wide ranges, default 31",
            "p": _P,
        },
    ),
    (
        "autoaugment",
        "autoaugment:AutoAugment",
        "AutoAugment (Cubuk et al. 2019): a learned sub-policy of two ops per image",
        False,
        {
            "policy": "cifar10, imagenet or svhn: the published sub-policies, default cifar10",
            "p": _P,
        },
    ),
]


@hookimpl
def register_augmentations(registry: Registry) -> None:
    for name, builder, summary, soft, options in _AUGMENTATIONS:
        registry.register(
            name,
            f"{_MODULE}.{builder}",
            summary=summary,
            level="batch",
            soft_targets=soft,
            options=options,
        )
