"""zoo-shapes' own tests: zoo's conformance kit, one real epoch, and what this plugin promises itself."""

from __future__ import annotations

import subprocess
import sys

import torch
from zoo_core.testing import check_augmentation, check_dataset, check_model, check_plugin, train_smoke

from zoo_shapes.augment import rot90
from zoo_shapes.data import CLASSES, shapes


def test_the_registration_module_never_imports_torch():
    code = "import sys, zoo_shapes; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_every_entry_passes_zoo_check():
    check_plugin("shapes")  # raises, listing each failed check and its reason


def test_each_entry_on_its_own():
    assert check_model("shapenet")
    assert check_dataset("shapes")
    assert check_augmentation("rot90")


def test_one_epoch_trains_with_the_augmentation():
    metrics = train_smoke("shapes", "shapenet", augs=["rot90:p=1.0"], samples=96, batch_size=32)
    assert metrics["epoch"] == 1
    assert 0.0 <= metrics["val_acc"] <= 1.0


def test_the_splits_are_drawn_the_same_every_time_and_differ_from_each_other():
    first, again = shapes(split="test", count=50), shapes(split="test", count=50)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert not torch.equal(shapes(split="train", count=50).images, first.images)
    assert first.classes == CLASSES


def test_rot90_turns_every_image_when_p_is_1_and_none_when_p_is_0():
    x = torch.randn(6, 3, 8, 8)
    y = torch.arange(6)
    g = torch.Generator().manual_seed(0)
    turned, labels = rot90(num_classes=6, p=1.0)(x, y, generator=g)
    assert torch.equal(labels, y)
    assert all(
        any(torch.equal(turned[i], torch.rot90(x[i], k, dims=(1, 2))) for k in (1, 2, 3)) for i in range(6)
    )
    assert torch.equal(rot90(num_classes=6, p=0.0)(x, y, generator=g)[0], x)
