"""CIFAR-10 from the official python version (pickled batches, read through a restricted unpickler) or from
the same images as an ImageFolder tree (``train/<class>/*``, ``test/<class>/*``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from zoo_core.data.dataset import InMemoryDataset, check_split
from zoo_core.data.download import download_file, extract_tar
from zoo_core.data.root import describe_dirs, find_data_dir, resolve_data_root
from zoo_core.data.safe_pickle import load_numpy_pickle
from zoo_core.errors import BadInputError, DataNotFoundError, ZooError
from zoo_plugins.datasets.imagefolder import read_image_tree, visible_dirs

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
SPLITS = ("train", "test")
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
SUBFOLDER = "cifar-10-batches-py"
TREE_SUBFOLDER = "cifar10-images"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
URL_ENV = "ZOO_CIFAR10_URL"
MD5 = "c58f30108f718f92721af3b95e74349a"  # published beside the archive on the CIFAR page
FORMATS = ("auto", "pickle", "images")


def cifar10(
    *,
    root: Path | None = None,
    split: str = "train",
    download: bool = False,
    format: str = "auto",
    url: str | None = None,
    strict: bool = False,
    cache: bool = True,
) -> InMemoryDataset:
    """CIFAR-10: 60,000 32×32 colour images of 10 classes (official python batches, or an image tree).

    Looks in ``root`` and ``root/cifar-10-batches-py`` for the batches, then in ``root/cifar10-images`` and
    ``root`` for a ``<split>/<class>/<image>`` tree (``format`` = ``pickle`` or ``images`` picks one).
    ``download`` fetches the official archive from ``url`` (default: $ZOO_CIFAR10_URL, else the CIFAR page)
    and checks its published MD5. Per-file checksums are never checked when reading.
    """
    check_split(split, SPLITS, "cifar10")
    if format not in FORMATS:
        raise BadInputError(f"Unknown CIFAR-10 format {format!r}: use one of {', '.join(FORMATS)}")
    root = resolve_data_root(root)
    if format != "images":
        folder = find_data_dir(root, [SUBFOLDER], lambda d: (d / "batches.meta").is_file())
        if folder is not None:
            return read_batches(folder, split)
    if format != "pickle":
        tree = find_tree(root)
        if tree is not None:
            return read_tree(tree, split, strict=strict, cache=cache)
    if download and format != "images":
        fetch(root, url)
        return read_batches(root / SUBFOLDER, split)
    source = url or os.environ.get(URL_ENV) or URL
    looked = describe_dirs(root, [SUBFOLDER, TREE_SUBFOLDER])
    raise DataNotFoundError(
        f"CIFAR-10 not found (looked in {looked}); pass --download to fetch {source}, "
        "or --data-dir pointing where cifar-10-batches-py/ is"
    )


def fetch(root: Path, url: str | None = None) -> None:
    """Download the official archive into ``root`` and unpack ``root/cifar-10-batches-py``."""
    url = url or os.environ.get(URL_ENV) or URL
    archive = download_file(url, root / "cifar-10-python.tar.gz", md5=MD5, desc="CIFAR-10")
    extract_tar(archive, root)
    archive.unlink()
    if not (root / SUBFOLDER / "batches.meta").is_file():
        raise ZooError(f"The archive from {url} holds no {SUBFOLDER}/batches.meta; check the URL")


def read_batches(folder: Path, split: str) -> InMemoryDataset:
    """The official pickled batches of one split, validated: uint8 rows of 3,072 values, labels 0–9."""
    meta = _as_str_keys(
        load_numpy_pickle(folder / "batches.meta", what="CIFAR-10 file"), folder / "batches.meta"
    )
    names = meta.get("label_names", [])
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise ZooError(f"{folder / 'batches.meta'}: label_names must be a list of strings")
    classes = [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
    if len(classes) != len(CLASSES):
        raise ZooError(
            f"{folder / 'batches.meta'}: expected {len(CLASSES)} label_names, found {len(classes)}"
        )
    data, labels = [], []
    for name in BATCHES[split]:
        path = folder / name
        if not path.is_file():
            raise DataNotFoundError(
                f"CIFAR-10 file {path} is missing; pass --download to fetch the data set again"
            )
        batch = _as_str_keys(load_numpy_pickle(path, what="CIFAR-10 batch"), path)
        rows, ys = batch.get("data"), batch.get("labels", [])
        # checked before numpy looks inside: a crafted list of shared sublists is exponentially large
        if isinstance(ys, list) and all(type(y) is int for y in ys):
            ys = np.asarray(ys)
        elif not isinstance(ys, np.ndarray):
            raise ZooError(f"{path}: 'labels' must be a list of integers")
        if (
            not isinstance(rows, np.ndarray)
            or rows.dtype != np.uint8
            or rows.ndim != 2
            or rows.shape[1] != 3072
        ):
            found = f"{rows.dtype} {rows.shape}" if isinstance(rows, np.ndarray) else type(rows).__name__
            raise ZooError(f"{path}: 'data' must be uint8 rows of 3072 values, found {found}")
        if ys.shape != (len(rows),) or ys.dtype.kind not in "iu":
            raise ZooError(f"{path}: expected {len(rows)} integer labels, found {ys.dtype} {ys.shape}")
        if len(ys) and (ys.min() < 0 or ys.max() >= len(classes)):
            raise ZooError(f"{path}: labels must lie in 0..{len(classes) - 1}, found {ys.min()}..{ys.max()}")
        data.append(rows)
        labels.append(ys)
    images = torch.from_numpy(np.concatenate(data).reshape(-1, 3, 32, 32))
    return InMemoryDataset(
        images=images,
        labels=torch.from_numpy(np.concatenate(labels).astype(np.int64)),
        classes=classes,
        mean=MEAN,
        std=STD,
    )


def _as_str_keys(obj: object, path: Path) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise ZooError(f"{path}: expected a dictionary, found {type(obj).__name__}")
    return {
        k.decode("latin1") if isinstance(k, bytes) else k: v
        for k, v in obj.items()
        if isinstance(k, bytes | str)
    }


def find_tree(root: Path) -> Path | None:
    """``root/cifar10-images`` or ``root``, whichever holds train/ or test/ of CIFAR-10 class folders."""
    for folder in (root / TREE_SUBFOLDER, root):
        class_sets = [set(visible_dirs(folder / s)) for s in SPLITS if (folder / s).is_dir()]
        if class_sets and all(classes and classes <= set(CLASSES) for classes in class_sets):
            return folder
    return None


def read_tree(tree: Path, split: str, *, strict: bool = False, cache: bool = True) -> InMemoryDataset:
    """CIFAR-10 as ``tree/<split>/<class>/<image>`` with the canonical class order; images must be 32×32."""
    dataset = read_image_tree(tree, split, classes=CLASSES, channels=3, strict=strict, cache=cache)
    if dataset.input_size != (3, 32, 32):
        raise ZooError(
            f"Images under {tree / split} are {dataset.input_size}, CIFAR-10 images are (3, 32, 32)"
        )
    dataset.mean, dataset.std = MEAN, STD
    return dataset
