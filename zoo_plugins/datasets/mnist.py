"""MNIST from the official IDX files, plain or gzip-compressed, with magic numbers and sizes checked."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from zoo_core.data.dataset import InMemoryDataset, check_split
from zoo_core.data.download import download_file
from zoo_core.data.root import describe_dirs, find_data_dir, resolve_data_root
from zoo_core.errors import DataNotFoundError, ZooError

CLASSES = [str(d) for d in range(10)]
MEAN = (0.1307,)
STD = (0.3081,)
SPLITS = ("train", "test")
SUBFOLDERS = ("mnist", "MNIST/raw")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# the mirror torchvision uses: the original site often refuses downloads
URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
URL_ENV = "ZOO_MNIST_URL"
MD5 = {  # published MD5s of the official .gz files
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_UBYTE = 0x08


def mnist(
    *, root: Path | None = None, split: str = "train", download: bool = False, url: str | None = None
) -> InMemoryDataset:
    """MNIST: 70,000 28×28 grey handwritten digits (official IDX files, plain or .gz).

    Looks in ``root``, ``root/mnist`` and ``root/MNIST/raw``. ``download`` fetches the four official .gz
    files into ``root/mnist`` from ``url`` (a folder URL; default $ZOO_MNIST_URL, else torchvision's
    mirror) and checks their published MD5s.
    """
    check_split(split, SPLITS, "mnist")
    root = resolve_data_root(root)
    images_name, labels_name = FILES[split]
    folder = find_data_dir(root, SUBFOLDERS, lambda d: _locate(d, images_name) is not None)
    if folder is None and download:
        fetch(root, url)
        folder = root / "mnist"
    if folder is None:
        source = url or os.environ.get(URL_ENV) or URL
        looked = describe_dirs(root, SUBFOLDERS)
        raise DataNotFoundError(
            f"MNIST {split} files not found (looked for {images_name}[.gz] in {looked}); "
            f"pass --download to fetch them from {source}, or --data-dir pointing where they are"
        )
    images_path = _locate(folder, images_name)
    labels_path = _locate(folder, labels_name)
    if labels_path is None:
        raise DataNotFoundError(
            f"MNIST file {folder / labels_name}[.gz] is missing; pass --download to fetch it"
        )
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise ZooError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(labels) and labels.max() > 9:
        raise ZooError(f"{labels_path}: labels must lie in 0..9, found up to {labels.max()}")
    return InMemoryDataset(
        images=torch.from_numpy(images).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        classes=list(CLASSES),
        mean=MEAN,
        std=STD,
    )


def _locate(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions (gzip-compressed or not), checked."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ZooError(f"{path}: damaged gzip data ({exc}); delete it and download again") from None
    expected = (IDX_UBYTE << 8) | ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected:
        found = f"{magic:#010x}" if magic is not None else "none (file too short)"
        raise ZooError(
            f"{path}: not an IDX file of {ndim}-d unsigned bytes (magic {found}, expected {expected:#010x})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ZooError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = math.prod(shape)  # exact: numpy's int64 product wraps around for crafted sizes
    if len(raw) - header != size:
        raise ZooError(
            f"{path}: the header announces {'×'.join(map(str, shape))} = {size} bytes of data, "
            f"the file holds {len(raw) - header}; delete it and download again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def fetch(root: Path, url: str | None = None) -> None:
    """Download the four official .gz files that are missing into ``root/mnist``."""
    base = url or os.environ.get(URL_ENV) or URL
    base = base if base.endswith("/") else base + "/"
    for name, md5 in MD5.items():
        dest = root / "mnist" / name
        if not dest.is_file():
            download_file(base + name, dest, md5=md5, desc=name)
