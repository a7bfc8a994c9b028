"""``tv/<name>``: torchvision's classification data sets, read by torchvision's own classes from its layout
under the data root (``--download`` fetches them through torchvision), then given to zoo as any data set:

- the sets torchvision holds as arrays (CIFAR-100, the MNIST family, SVHN, STL-10) become the uint8
  in-memory form at once: they are already decoded and small;
- the sets of photo files (Flowers102, Food101, Pets, GTSRB, DTD, EuroSAT) are read as imagefolder reads a
  tree (``imagefolder.read_files``): through zoo's one decoder, resized to one size (``--image-size``,
  default the registered ``input_size``), cached in memory or streamed as the memory plan says.

Files that are missing or fail torchvision's checksum are exit 2 naming the files torchvision expects.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo_core.data.dataset import InMemoryDataset, check_split
from zoo_core.data.root import resolve_data_root
from zoo_core.data.stats import channel_stats
from zoo_core.errors import BadInputError, DataNotFoundError
from zoo_plugins.datasets import imagefolder_recipe
from zoo_plugins.datasets.imagefolder import read_files
from zoo_plugins.datasets.imagefolder_tree import size_pair
from zoo_plugins.datasets.torchvision_names import SETS, TvSet, describe

EMNIST_VARIANTS = ("balanced", "byclass", "bymerge", "letters", "digits", "mnist")
EUROSAT_TEST_EVERY = 5  # zoo's split of EuroSAT, which has none: every fifth image of a class is a test image


def tv(
    name: str,
    *,
    root: Path | None = None,
    split: str = "train",
    download: bool = False,
    variant: str | None = None,
    image_size: int | Sequence[int] | None = None,
    **read: Any,
) -> InMemoryDataset | Any:
    """torchvision's data set ``name`` (``torchvision_names.SETS``), split ``split``, from its layout under
    ``root``. ``variant``: EMNIST's split (balanced by default). ``image_size`` and ``read`` (channels,
    strict, cache, cache_dir, workers, data_mode, crop_pct, decode): as imagefolder's, for the photo sets."""
    spec = SETS[name]
    meta = describe(name)
    check_split(split, meta["splits"], f"tv/{name}")
    root = resolve_data_root(root)
    source = _open(spec, name, root, split, download, variant)
    if not spec.photos:
        if image_size is not None or read.get("data_mode", "auto") == "stream":
            raise BadInputError(f"tv/{name} is held in memory at its own size: no --image-size or stream")
        return _from_arrays(spec, name, source)
    files, classes, folder = _photo_files(name, source, split)
    size = size_pair(image_size) or tuple(spec.input_size[1:])
    data = read_files(folder, files, classes, size, name=f"tv-{name}-{split}", **read)
    if data.recipe is not None:
        data.recipe["flip"] = spec.flip
    return data


def _open(spec: TvSet, name: str, root: Path, split: str, download: bool, variant: str | None) -> Any:
    """torchvision's data set object; its errors for missing or damaged files become one line naming the
    files it expects."""
    import torchvision.datasets as tvd

    kwargs: dict[str, Any] = dict(spec.split_args.get(split, {"split": split}))
    if name == "emnist":
        if (variant or "balanced") not in EMNIST_VARIANTS:
            raise BadInputError(f"tv/emnist variant must be one of {', '.join(EMNIST_VARIANTS)}")
        kwargs["split"] = variant or "balanced"
    elif variant is not None:
        raise BadInputError(f"tv/{name} has no variants (--dataset-arg variant=…)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(tvd, spec.cls)(str(root), download=download, **kwargs)
    except (RuntimeError, FileNotFoundError, OSError, ValueError) as exc:
        expected = ", ".join(spec.files)
        fetch = "" if download else "; --download fetches them"
        raise DataNotFoundError(
            f"tv/{name}: torchvision's {spec.cls} files are missing or damaged under {root} "
            f"(expected {expected}){fetch} [{' '.join(str(exc).split())[:120]}]"
        ) from None


def _from_arrays(spec: TvSet, name: str, source: Any) -> InMemoryDataset:
    """An array-held torchvision set as uint8 N×C×H×W images and int64 labels, its recipe sized to them."""
    data = source.data
    data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if data.ndim == 3:  # N×H×W grey
        data = data[:, None]
    elif data.shape[-1] == 3:  # N×H×W×C (CIFAR)
        data = data.transpose(0, 3, 1, 2)
    if name == "emnist":  # EMNIST's files hold each glyph transposed: made upright as a reader sees it
        data = data.transpose(0, 1, 3, 2)
    labels = getattr(source, "targets", None)
    if labels is None:
        labels = source.labels
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if labels.dim() == 2:  # QMNIST without compat: the class is the first column
        labels = labels[:, 0]
    images = torch.from_numpy(np.ascontiguousarray(data, dtype=np.uint8))
    classes = [str(c) for c in getattr(source, "classes", None) or range(spec.num_classes)]
    mean, std = channel_stats(images)
    recipe = {**imagefolder_recipe(len(labels)), "flip": spec.flip}
    return InMemoryDataset(images, labels, classes, mean=mean, std=std, recipe=recipe)


Files = list[tuple[str, int, int, int]]  # (path relative to a folder, size, mtime_ns, label)


def _photo_files(name: str, source: Any, split: str) -> tuple[Files, list[str], Path]:
    """(files relative to their common folder with size, mtime and label; the classes; that folder)."""
    if hasattr(source, "samples"):  # EuroSAT: an ImageFolder with no split of its own
        seen: dict[int, int] = {}
        pairs = []
        for path, label in source.samples:
            rank = seen[label] = seen.get(label, -1) + 1  # the image's place within its class
            if (rank % EUROSAT_TEST_EVERY == EUROSAT_TEST_EVERY - 1) == (split == "test"):
                pairs.append((Path(path), int(label)))
    elif hasattr(source, "_samples"):  # GTSRB
        pairs = [(Path(p), int(y)) for p, y in source._samples]
    else:
        paths = getattr(source, "_image_files", None) or source._images
        pairs = [(Path(p), int(y)) for p, y in zip(paths, source._labels, strict=True)]
    if not pairs:
        raise DataNotFoundError(f"tv/{name}: no images in its {split} split")
    folder = Path(os.path.commonpath([str(p.parent) for p, _ in pairs]))
    files = []
    for path, label in pairs:
        st = path.stat()
        files.append((str(path.relative_to(folder)), st.st_size, st.st_mtime_ns, label))
    count = SETS[name].num_classes
    classes = [str(c) for c in getattr(source, "classes", None) or [f"{i:05d}" for i in range(count)]]
    return files, classes, folder
