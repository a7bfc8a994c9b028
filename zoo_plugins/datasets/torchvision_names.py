"""torchvision's classification data sets as zoo names ``tv/<name>``: what each is, where torchvision keeps
its files under the data root, and its metadata. Plain values only: ``zoo list datasets 'tv/*'`` reads this
module without importing torch or torchvision; ``torchvision_sets`` reads the files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo_plugins.datasets import SPLITS, imagefolder_recipe


@dataclass(frozen=True)
class TvSet:
    """One of torchvision's data sets: its class (``torchvision.datasets.<cls>``), how zoo's splits map to
    its arguments, the files it expects under the data root, and its metadata."""

    cls: str
    summary: str
    num_classes: int
    input_size: tuple[int, int, int]  # what zoo reads it at (--image-size for the photo sets)
    train_images: int  # the official training split's size: the recipe is sized to it
    files: tuple[str, ...]  # what torchvision expects under the data root, for the missing-files message
    split_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    photos: bool = False  # image files of many sizes (read as imagefolder reads them), else arrays
    flip: bool = True  # False where a mirror changes the class (digits, letters, signs)
    extra_splits: tuple[str, ...] = ()


_TRAIN_TEST = {"train": {"train": True}, "test": {"train": False}}
_SPLIT = {"train": {"split": "train"}, "test": {"split": "test"}}


def _idx(folder: str, prefix: str = "", train: str = "train", test: str = "t10k") -> tuple[str, ...]:
    return tuple(
        f"{folder}/raw/{prefix}{part}-{kind}-ubyte"
        for part in (train, test)
        for kind in ("images-idx3", "labels-idx1")
    )


SETS: dict[str, TvSet] = {
    "cifar100": TvSet(
        "CIFAR100",
        "CIFAR-100: 60,000 32×32 colour images of 100 classes (torchvision's python pickles)",
        100,
        (3, 32, 32),
        50_000,
        ("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
        _TRAIN_TEST,
    ),
    "fashionmnist": TvSet(
        "FashionMNIST",
        "Fashion-MNIST: 70,000 28×28 grey images of 10 kinds of clothing (IDX files)",
        10,
        (1, 28, 28),
        60_000,
        _idx("FashionMNIST"),
        _TRAIN_TEST,
    ),
    "kmnist": TvSet(
        "KMNIST",
        "Kuzushiji-MNIST: 70,000 28×28 grey cursive Japanese characters, 10 classes (IDX files)",
        10,
        (1, 28, 28),
        60_000,
        _idx("KMNIST"),
        _TRAIN_TEST,
        flip=False,
    ),
    "qmnist": TvSet(
        "QMNIST",
        "QMNIST: MNIST's digits with 120,000 reconstructed, 28×28 grey (IDX files)",
        10,
        (1, 28, 28),
        60_000,
        tuple(
            f"QMNIST/raw/qmnist-{s}-{k}"
            for s in ("train", "test")
            for k in ("images-idx3-ubyte", "labels-idx2-int")
        ),
        {"train": {"what": "train"}, "test": {"what": "test"}},
        flip=False,
    ),
    "emnist": TvSet(
        "EMNIST",
        "EMNIST balanced: 131,600 28×28 grey handwritten letters and digits, 47 classes (IDX files; "
        "--dataset-arg variant=letters|digits|byclass|bymerge|mnist)",
        47,
        (1, 28, 28),
        112_800,
        _idx("EMNIST", "emnist-balanced-", "train", "test"),
        _TRAIN_TEST,
        flip=False,
    ),
    "svhn": TvSet(
        "SVHN",
        "SVHN: 99,289 32×32 colour house-number digits, 10 classes (cropped digits, .mat files)",
        10,
        (3, 32, 32),
        73_257,
        ("train_32x32.mat", "test_32x32.mat"),
        _SPLIT,
        flip=False,
        extra_splits=("extra",),
    ),
    "stl10": TvSet(
        "STL10",
        "STL-10: 13,000 labelled 96×96 colour images of 10 classes (binary files)",
        10,
        (3, 96, 96),
        5_000,
        tuple(f"stl10_binary/{f}" for f in ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")),
        _SPLIT,
    ),
    "flowers102": TvSet(
        "Flowers102",
        "Oxford 102 Flowers: 8,189 photos of 102 kinds of flower",
        102,
        (3, 64, 64),
        1_020,
        ("flowers-102/jpg/", "flowers-102/imagelabels.mat", "flowers-102/setid.mat"),
        {"train": {"split": "train"}, "test": {"split": "test"}, "val": {"split": "val"}},
        photos=True,
        extra_splits=("val",),
    ),
    "food101": TvSet(
        "Food101",
        "Food-101: 101,000 photos of 101 dishes",
        101,
        (3, 64, 64),
        75_750,
        ("food-101/images/", "food-101/meta/train.json", "food-101/meta/test.json"),
        _SPLIT,
        photos=True,
    ),
    "oxfordiiitpet": TvSet(
        "OxfordIIITPet",
        "Oxford-IIIT Pet: 7,349 photos of 37 breeds of cat and dog",
        37,
        (3, 64, 64),
        3_680,
        ("oxford-iiit-pet/images/", "oxford-iiit-pet/annotations/trainval.txt", "…/test.txt"),
        {"train": {"split": "trainval"}, "test": {"split": "test"}},
        photos=True,
    ),
    "gtsrb": TvSet(
        "GTSRB",
        "German Traffic Sign Recognition Benchmark: 51,839 photos of 43 signs",
        43,
        (3, 32, 32),
        26_640,
        ("gtsrb/GTSRB/Training/", "gtsrb/GTSRB/Final_Test/Images/", "gtsrb/GT-final_test.csv"),
        _SPLIT,
        photos=True,
        flip=False,
    ),
    "dtd": TvSet(
        "DTD",
        "Describable Textures: 5,640 photos of 47 textures (partition 1)",
        47,
        (3, 64, 64),
        1_880,
        ("dtd/dtd/images/", "dtd/dtd/labels/train1.txt", "dtd/dtd/labels/test1.txt"),
        {"train": {"split": "train"}, "test": {"split": "test"}, "val": {"split": "val"}},
        photos=True,
        extra_splits=("val",),
    ),
    "eurosat": TvSet(
        "EuroSAT",
        "EuroSAT RGB: 27,000 64×64 satellite photos of 10 land uses (zoo's 80/20 split: every fifth "
        "image of a class is a test image)",
        10,
        (3, 64, 64),
        21_600,
        ("eurosat/2750/<class>/<image>.jpg",),
        {"train": {}, "test": {}},
        photos=True,
    ),
}


def list_names() -> list[str]:
    """The names of the ``tv`` namespace."""
    return sorted(SETS)


def describe(name: str) -> dict[str, Any]:
    """One ``tv/<name>``'s summary and metadata (the registry's per-name ``describe``)."""
    spec = SETS[name]
    recipe = {**imagefolder_recipe(spec.train_images), "flip": spec.flip}
    return {
        "summary": f"{spec.summary}; torchvision.datasets.{spec.cls} under --data-dir",
        "num_classes": spec.num_classes,
        "input_size": spec.input_size,
        "splits": (*SPLITS, *spec.extra_splits),
        "recipe": recipe,
        "download": True,
    }
