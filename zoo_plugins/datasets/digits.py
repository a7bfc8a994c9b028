"""The embedded default: scikit-learn's bundled 8×8 handwritten digits (1,797 images), upscaled to 32×32.

Needs no download and no files of ours: the data ship inside the installed scikit-learn package, read here
without importing scikit-learn itself.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zoo_core.data.dataset import InMemoryDataset, check_split
from zoo_core.errors import ZooError

CLASSES = [str(d) for d in range(10)]
SPLITS = ("train", "test")
SIZE = 32  # LeNet's classic input size
TEST_EVERY = 5  # within each class, every 5th image is a test image: a fixed, stratified 80/20 split
MEAN = (0.3051,)  # of the train split
STD = (0.3238,)


def digits(*, root: Path | None = None, split: str = "train", download: bool = False) -> InMemoryDataset:
    """Handwritten digits 0–9 bundled with scikit-learn: 1,797 images, 1×32×32, no download needed.

    A fixed stratified split: within each class, every 5th image (in file order) is in ``test``
    (355 images), the rest in ``train`` (1,442). ``root`` and ``download`` are accepted and unused.
    """
    check_split(split, SPLITS, "digits")
    with gzip.open(_data_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    rank_in_class = np.zeros(len(labels), dtype=np.int64)
    for c in range(10):
        members = np.flatnonzero(labels == c)
        rank_in_class[members] = np.arange(len(members))
    is_test = rank_in_class % TEST_EVERY == TEST_EVERY - 1
    keep = is_test if split == "test" else ~is_test
    # values are 0–16 ink counts; bilinear upscaling keeps the strokes smooth
    small = torch.from_numpy(pixels[keep] * (255.0 / 16.0)).view(-1, 1, 8, 8)
    images = F.interpolate(small, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return InMemoryDataset(
        images=images.round().clamp(0, 255).to(torch.uint8),
        labels=torch.from_numpy(labels[keep]),
        classes=list(CLASSES),
        mean=MEAN,
        std=STD,
    )


def _data_file() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ZooError(
            "The digits data set ships with scikit-learn, which is not installed: pip install scikit-learn"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise ZooError(f"scikit-learn's digits file is missing ({path}); reinstall scikit-learn")
    return path
