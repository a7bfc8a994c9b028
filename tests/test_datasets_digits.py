"""The embedded default data set and the registrations of every built-in data set."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from zoo_core.errors import BadInputError
from zoo_plugins.datasets.digits import digits

RECIPE_KEYS = {
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "label_smoothing",
    "schedule",
    "crop_padding",
    "flip",
}


def test_digits_shapes_and_split() -> None:
    train, test = digits(split="train"), digits(split="test")
    assert train.images.shape == (1442, 1, 32, 32) and test.images.shape == (355, 1, 32, 32)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.classes == [str(d) for d in range(10)]
    assert train.images.max() > 200  # full 0–255 range, not the raw 0–16 counts
    # stratified: every class in both, test about a fifth of each
    for c in range(10):
        n_train, n_test = int((train.labels == c).sum()), int((test.labels == c).sum())
        assert 0.15 < n_test / (n_train + n_test) < 0.25


def test_digits_split_is_fixed_and_disjoint() -> None:
    a, b = digits(split="train"), digits(split="train")
    assert torch.equal(a.images, b.images)
    test = digits(split="test")
    flat_train = {bytes(x.flatten().tolist()) for x in a.images}
    overlap = sum(bytes(x.flatten().tolist()) in flat_train for x in test.images)
    assert overlap <= 2  # the set itself holds a couple of identical images


def test_digits_declared_stats_match_the_train_split() -> None:
    train = digits(split="train")
    mean = train.images.double().mean() / 255
    std = train.images.double().std(unbiased=False) / 255
    assert mean == pytest.approx(train.mean[0], abs=1e-3) and std == pytest.approx(train.std[0], abs=1e-3)


def test_digits_bad_split() -> None:
    with pytest.raises(BadInputError, match="train, test"):
        digits(split="all")


def test_digits_does_not_import_scikit_learn() -> None:
    code = "import sys; import zoo_plugins.datasets.digits as d; d.digits(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registrations_carry_metadata_and_recipes(catalog) -> None:
    names = catalog.datasets.names()
    assert {"cifar10", "mnist", "imagefolder", "digits"} <= set(names)
    for name in ("cifar10", "mnist", "imagefolder", "digits"):
        meta = catalog.datasets.get(name).meta
        assert set(meta["recipe"]) == RECIPE_KEYS
        assert meta["splits"] == ("train", "test")
        assert meta["recipe"]["optimizer"] in {"sgd", "adamw"}
        assert meta["recipe"]["schedule"] in {"onecycle", "cosine", "step"}
        assert "default_model" in meta
    cifar = catalog.datasets.get("cifar10").meta
    assert cifar["num_classes"] == 10 and cifar["input_size"] == (3, 32, 32)
    assert cifar["recipe"]["crop_padding"] == 4 and cifar["recipe"]["flip"] is True
    assert catalog.datasets.get("imagefolder").meta["num_classes"] is None
    assert catalog.datasets.get("digits").meta["input_size"] == (1, 32, 32)
    data = catalog.datasets.build("digits", split="test")
    assert data.mean == catalog.datasets.get("digits").meta["mean"]


def test_registering_data_sets_imports_no_torch() -> None:
    code = (
        "import sys, zoo_core; c = zoo_core.get_catalog(); c.datasets.get('cifar10');"
        "print([m for m in ('torch', 'numpy', 'PIL') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
