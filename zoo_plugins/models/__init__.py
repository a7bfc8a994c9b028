"""zoo's built-in models: the CIFAR/MNIST canon (VGG, ResNet, MobileNet, Inception, GoogLeNet, LeNet),
torchvision's ResNet-18 adapted to 32×32, and the ``timm/<name>`` namespace.

Only names and metadata are registered here; torch, torchvision and timm are imported when a model is
built. ``params`` is the parameter count at the default num_classes and in_chans (a test recomputes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_core import hookimpl

if TYPE_CHECKING:
    from zoo_core import Registry

CIFAR = {"input_size": (3, 32, 32), "num_classes": 10, "default_dataset": "cifar10"}

# name → (module:function, family, params at 10 classes and 3 channels, summary)
MODELS: dict[str, tuple[str, str, int, str]] = {
    "vgg11": ("vgg:vgg11", "vgg", 9_231_114, "VGG-11 with BatchNorm, CIFAR head (512 → classes)."),
    "vgg13": ("vgg:vgg13", "vgg", 9_416_010, "VGG-13 with BatchNorm, CIFAR head (512 → classes)."),
    "vgg16": ("vgg:vgg16", "vgg", 14_728_266, "VGG-16 with BatchNorm, CIFAR head (512 → classes)."),
    "vgg19": ("vgg:vgg19", "vgg", 20_040_522, "VGG-19 with BatchNorm, CIFAR head (512 → classes)."),
    "resnet18": (
        "resnet:resnet18",
        "resnet",
        11_173_962,
        "ResNet-18, CIFAR variant (3×3 stem, no max-pool).",
    ),
    "resnet34": (
        "resnet:resnet34",
        "resnet",
        21_282_122,
        "ResNet-34, CIFAR variant (3×3 stem, no max-pool).",
    ),
    "resnet50": (
        "resnet:resnet50",
        "resnet",
        23_520_842,
        "ResNet-50 with bottleneck blocks, CIFAR variant (3×3 stem, no max-pool).",
    ),
    "mobilenet_v1": (
        "mobilenet:mobilenet_v1",
        "mobilenet",
        3_217_226,
        "MobileNet v1 (depthwise-separable convs), CIFAR variant.",
    ),
    "mobilenet_v2": (
        "mobilenet:mobilenet_v2",
        "mobilenet",
        2_236_682,
        "MobileNet v2 (inverted residuals, linear bottlenecks), CIFAR variant.",
    ),
    "inception": (
        "inception:inception",
        "inception",
        1_374_930,
        "Small Inception network for 32×32 images (six Inception modules).",
    ),
    "googlenet": (
        "googlenet:googlenet",
        "inception",
        5_871_914,
        "GoogLeNet, CIFAR variant (3×3 stem, nine Inception modules).",
    ),
    "tv_resnet18": (
        "tv_resnet:tv_resnet18",
        "resnet",
        11_173_962,
        "torchvision ResNet-18 adapted to 32×32 (3×3 stride-1 stem, no max-pool).",
    ),
}


# airbench94_muon's recipe (Jordan 2024, KellerJordan/cifar10-airbench) in zoo's terms, for 94% in 8 epochs.
# Muon trains the conv filters: momentum 0.6 (Nesterov), 3 Newton–Schulz steps, each filter rescaled to norm
# sqrt(out_channels) before its step (a BatchNorm follows each conv, so only the direction matters), lr 0.16.
# SGD (momentum 0.85, Nesterov) trains the head at lr 1.6, and the BatchNorm shifts and the whitening bias at
# 64× that with 1/64 of the decay: airbench sums the loss over 2,000 images with bias lr 0.053 and head lr
# 0.67 on its logits / 256, which with zoo's mean loss and logits / 9 is 106 (≈ 1.6 × 64) and
# 0.67 × 2000 × (9/256)² ≈ 1.6. Weight decay per step (lr × decay) 0.004 × 1000/2000 on those groups, none on
# the filters. Every rate decays linearly to 0 without warm-up; the whitening bias trains 3 epochs.
# Changed from airbench94_muon for a CPU, where a step costs the same per image whatever the batch: batches of
# 1,000 (twice the steps of its 2,000 for the same arithmetic; measured better, benchmarks/results/
# fastnet-muon-cpu-amx.md), and no evaluation before the last epoch (eval_every 0). No weight averaging:
# lookahead, which the SGD recipe needed, cost accuracy with Muon (same file).
FASTNET_CIFAR10 = {
    "epochs": 8,
    "batch_size": 1000,
    "optimizer": "sgd",
    "lr": 1.6,
    "momentum": 0.85,
    "nesterov": True,
    "weight_decay": 0.00133,
    "label_smoothing": 0.2,
    "schedule": "linear:warmup=0,start=1,end=0",
    "crop_padding": 2,
    "padding_mode": "reflect",
    "flip": True,
    "alternate_flip": True,
    "param_groups": [
        {"params": "whiten.bias", "epochs": 3, "lr_scale": 64.0, "weight_decay_scale": 1 / 64},
        {"params": "*.norm*.bias", "lr_scale": 64.0, "weight_decay_scale": 1 / 64},
        {
            "params": "block*.conv*.weight",
            "lr_scale": 0.1,
            "weight_decay_scale": 0.0,
            "optimizer": "muon:momentum=0.6,nesterov=true,ns_steps=3,normalize=true",
        },
    ],
    "ema": 0.0,
    "eval_every": 0,
    "tta": "flip-translate",
    "precision": "auto",  # bf16 on a GPU and where a CPU computes it natively (AMX), else fp32
    "channels_last": True,
}


# ResNet-18 on CIFAR-10 past 95%: the field's long-schedule recipe (SGD, weight decay 5e-4, crop 4 and flip)
# with a per-image augmentation policy and Cutout on top, as TrivialAugment's CIFAR experiments run it
# (Müller & Hutter 2021: TA then a 16-pixel Cutout), and label smoothing 0.1. The keys it leaves out come from
# cifar10's recipe. Its goal, ≥ 95.5% test top-1, is measured by benchmarks/gpu_checks.sh on a GPU.
RESNET18_CIFAR10 = {
    "epochs": 100,
    "batch_size": 512,
    "lr": 0.2,
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "schedule": "onecycle",
    "crop_padding": 4,
    "flip": True,
    "augs": ["trivialaugment", "cutout:size=16"],
}
RECIPES = {"resnet18": {"cifar10": RESNET18_CIFAR10}}


@hookimpl
def register_models(registry: Registry) -> None:
    """Register the built-in models: names, builder strings and metadata, nothing imported yet."""
    for name, (target, family, params, summary) in MODELS.items():
        extra = {"recipe": RECIPES[name]} if name in RECIPES else {}
        registry.register(
            name,
            f"zoo_plugins.models.{target}",
            summary=summary,
            family=family,
            params=params,
            **extra,
            **CIFAR,
        )
    registry.register(
        "lenet",
        "zoo_plugins.models.lenet:lenet",
        summary="LeNet-5 for 32×32 (and 28×28) digits, ~61.7k parameters.",
        family="lenet",
        input_size=(1, 32, 32),
        num_classes=10,
        default_dataset="mnist",
        params=61_706,
    )
    registry.register(
        "fastnet",
        "zoo_plugins.models.fastnet:fastnet",
        summary="airbench94's network: patch-whitening stem, three conv groups, scaled linear head.",
        family="fastnet",
        params=1_972_792,
        recipe={"cifar10": FASTNET_CIFAR10},
        **CIFAR,
    )
    registry.register_namespace(
        "timm",
        "zoo_plugins.models.timm_bridge:create",
        lister="zoo_plugins.models.timm_bridge:list_names",
        summary="Any timm model by name (timm/<name>), built from scratch with num_classes and in_chans.",
        family="timm",
        input_size=(3, 224, 224),
        num_classes=1000,
        default_dataset=None,
    )
