"""Built-in data sets: names, metadata and training recipes only; the readers load when a data set is built.

``recipe`` holds the training defaults the Trainer starts from (options given on the command line win):
epochs, batch_size, optimizer ("sgd" | "adamw"), lr (the peak for "onecycle"), momentum, nesterov,
weight_decay, label_smoothing, schedule ("onecycle" | "cosine" | "step"), crop_padding, flip. A built data
set may carry its own ``recipe`` that refines the registered one for what it holds: ``imagefolder`` sizes
its recipe to the training split (``imagefolder_recipe``).
"""

from __future__ import annotations

import math

from zoo_core import hookimpl

CIFAR10_RECIPE = {
    "epochs": 30,
    "batch_size": 512,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "schedule": "onecycle",
    "crop_padding": 4,
    "flip": True,
}
MNIST_RECIPE = {
    "epochs": 4,
    "batch_size": 128,
    "optimizer": "adamw",
    "lr": 3e-3,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 1e-2,
    "label_smoothing": 0.0,
    "schedule": "onecycle",
    "crop_padding": 0,
    "flip": False,  # a mirrored digit is another glyph
}
DIGITS_RECIPE = {**MNIST_RECIPE, "epochs": 20, "batch_size": 64, "lr": 5e-3}
IMAGEFOLDER_RECIPE = {
    "epochs": 30,
    "batch_size": 128,
    "optimizer": "adamw",
    "lr": 1e-3,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 5e-2,
    "label_smoothing": 0.1,
    "schedule": "cosine",
    "crop_padding": 4,
    "flip": True,
}
# imagefolder's recipe for a training split of SMALL_SET images or more (32 steps an epoch at batch 128);
# smaller splits get a smaller batch and more epochs (imagefolder_recipe)
SMALL_SET = 4096
MIN_STEPS = 1000  # optimizer steps of a run on a small set: about what the fixed recipe gives SMALL_SET
MAX_EPOCHS = 100  # a tiny set stops here rather than spend a run on checkpoints of a few steps each
IMAGEFOLDER_NOTES = (
    f"The recipe above is for {SMALL_SET:,} training images or more. A smaller set gets a smaller batch "
    "(16 to 64: at least 32 steps an epoch where it can), more epochs (at least "
    f"{MIN_STEPS:,} optimizer steps, at most {MAX_EPOCHS} epochs) and lr 3e-3 one-cycle; a set smaller "
    "than the batch trains "
    "with a smaller one. flip is on, right for photographs: pass --no-flip for digits, letters, text, "
    "or anything a mirror turns into something else. Images of mixed sizes are resized to the median "
    "size, its shorter side capped at 64 (--image-size N chooses). Large images (shorter side ≥ 128 after "
    "--image-size) train ImageNet-style, as timm does: stored at size / 0.875 (shorter side resized, "
    "centre crop), random resized crops and flips in training (no padded crop), the centre crop in "
    "evaluation, prediction and the exported model card (crop_pct 0.875; --crop-pct 1 keeps the whole "
    "picture)."
)
SPLITS = ("train", "test")
# what imagefolder's recipe becomes for large images (shorter side ≥ 128 after --image-size): timm's and
# torchvision's ImageNet training, random resized crops (scale 0.08–1, ratio 3/4–4/3) and flips, with no
# padded crop; evaluation takes the centre crop (crop_pct 0.875, set by the data set, not the recipe)
LARGE_IMAGE_RECIPE = {"random_resized_crop": True, "crop_padding": 0, "flip": True, "label_smoothing": 0.1}


def imagefolder_recipe(images: int, large: bool = False) -> dict:
    """IMAGEFOLDER_RECIPE sized to a training split of ``images`` images (see IMAGEFOLDER_NOTES), with
    LARGE_IMAGE_RECIPE over it for ``large`` images."""
    recipe = _sized_recipe(images)
    return {**recipe, **LARGE_IMAGE_RECIPE} if large else recipe


def _sized_recipe(images: int) -> dict:
    if images >= SMALL_SET:
        return dict(IMAGEFOLDER_RECIPE)
    batch = 16
    while batch < 64 and batch * 2 * 32 <= images:
        batch *= 2
    batch = max(1, min(batch, images))
    steps = max(1, images // batch)
    epochs = min(MAX_EPOCHS, max(IMAGEFOLDER_RECIPE["epochs"], math.ceil(MIN_STEPS / steps)))
    # a small batch takes a higher peak lr, warmed up: on 1,500 MNIST digits 3e-3 one-cycle reached 90.6%
    # against 84.5% for 1e-3 cosine at the same batch (benchmarks/results/small-sets-cpu.md)
    return {**IMAGEFOLDER_RECIPE, "batch_size": batch, "epochs": epochs, "lr": 3e-3, "schedule": "onecycle"}


@hookimpl
def register_datasets(registry):
    registry.register(
        "cifar10",
        "zoo_plugins.datasets.cifar10:cifar10",
        summary="CIFAR-10: 60,000 32×32 colour images of 10 classes (official python batches or image tree)",
        aliases=("cifar-10",),
        num_classes=10,
        input_size=(3, 32, 32),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        splits=SPLITS,
        recipe=CIFAR10_RECIPE,
        default_model="resnet18",
        download=True,
    )
    registry.register(
        "mnist",
        "zoo_plugins.datasets.mnist:mnist",
        summary="MNIST: 70,000 28×28 grey handwritten digits (official IDX files, plain or .gz)",
        num_classes=10,
        input_size=(1, 28, 28),
        mean=(0.1307,),
        std=(0.3081,),
        splits=SPLITS,
        recipe=MNIST_RECIPE,
        default_model="lenet",
        download=True,
    )
    registry.register(
        "digits",
        "zoo_plugins.datasets.digits:digits",
        summary="Handwritten digits bundled with scikit-learn: 1,797 images, 1×32×32, no download needed",
        num_classes=10,
        input_size=(1, 32, 32),
        mean=(0.3051,),
        std=(0.3238,),
        splits=SPLITS,
        recipe=DIGITS_RECIPE,
        default_model="lenet",
        download=False,
    )
    registry.register(
        "imagefolder",
        "zoo_plugins.datasets.imagefolder:imagefolder",
        summary="Any <root>/<split>/<class>/<image> tree (--data-dir), decoded once and cached",
        num_classes=None,
        input_size=None,
        mean=None,
        std=None,
        splits=SPLITS,
        recipe=IMAGEFOLDER_RECIPE,
        notes=IMAGEFOLDER_NOTES,
        default_model="resnet18",
        download=False,
    )
    registry.register_namespace(
        "tv",
        "zoo_plugins.datasets.torchvision_sets:tv",
        lister="zoo_plugins.datasets.torchvision_names:list_names",
        describe="zoo_plugins.datasets.torchvision_names:describe",
        summary="torchvision's classification data sets (tv/<name>) in torchvision's layout under --data-dir",
        num_classes=None,
        input_size=None,
        splits=SPLITS,
        download=True,
    )
    registry.register(
        "hf",
        "zoo_plugins.datasets.hf:hf",
        summary="A Hugging Face data set: save_to_disk folder or {split}-*.parquet at --data-dir, or "
        "--dataset-arg name=ORG/NAME (needs zoo-models[hf])",
        num_classes=None,
        input_size=None,
        mean=None,
        std=None,
        splits=SPLITS,
        recipe=IMAGEFOLDER_RECIPE,
        notes=IMAGEFOLDER_NOTES,
        default_model="resnet18",
        download=False,
    )
    registry.register(
        "wds",
        "zoo_plugins.datasets.wds:wds",
        summary="WebDataset tar shards {split}-*.tar at --data-dir, or --dataset-arg urls=PATTERN (paths, "
        "http(s), pipe:), streamed shard by shard (needs zoo-models[wds])",
        num_classes=None,
        input_size=None,
        mean=None,
        std=None,
        splits=SPLITS,
        recipe=IMAGEFOLDER_RECIPE,
        notes=IMAGEFOLDER_NOTES,
        default_model="resnet18",
        download=False,
    )
