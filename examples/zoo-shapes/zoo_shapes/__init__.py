"""zoo-shapes: procedurally drawn shapes, a small CNN for them, and a quarter-turn batch augmentation.

This module is what ``zoo list`` imports: names and metadata only. torch is imported by the builders,
named here as ``"module:function"`` strings, when an entry is built.
"""

from __future__ import annotations

from zoo_core import hookimpl

SHAPES_RECIPE = {  # the defaults of `zoo train shapes …` (command-line options win)
    "epochs": 8,
    "batch_size": 64,
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "schedule": "onecycle",
    "crop_padding": 2,
    "flip": True,  # a mirrored shape is the same shape
}


@hookimpl
def register_models(registry):
    registry.register(
        "shapenet",
        "zoo_shapes.model:shapenet",
        summary="A four-layer CNN for 32×32 drawings (about 24k parameters)",
        family="shapes",
        input_size=(3, 32, 32),
        num_classes=4,
        default_dataset="shapes",
        params=23_828,  # at num_classes=4, in_chans=3; `zoo check shapes` compares it with the built model
    )


@hookimpl
def register_datasets(registry):
    registry.register(
        "shapes",
        "zoo_shapes.data:shapes",
        summary="Circles, squares, triangles and crosses drawn at random: 2,000 train / 500 test, 3×32×32",
        num_classes=4,
        input_size=(3, 32, 32),
        mean=None,  # computed from the training images
        std=None,
        splits=("train", "test"),
        recipe=SHAPES_RECIPE,
        default_model="shapenet",
    )


@hookimpl
def register_augmentations(registry):
    registry.register(
        "rot90",
        "zoo_shapes.augment:rot90",
        summary="Turn each image by a random multiple of 90° (probability p)",
        level="batch",
        soft_targets=False,
        options={"p": "probability that an image is turned (default 0.5)"},
    )
