"""Writing an in-memory data set as an ImageFolder tree: ``DIR/<split>/<class>/NNNNN.png``.

File names are each image's index in the split, so the order of the source can be recovered; a split is
written into a hidden folder and renamed into place when complete, so an interrupted export never leaves a
tree that would read back as a smaller data set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from zoo_core.errors import BadInputError

_CHUNK = 256


def export_image_folder(dataset: object, dest: str | Path, split: str, *, progress: bool = True) -> Path:
    """Write every image of ``dataset`` (``images`` uint8 N×C×H×W, ``labels``, ``classes``) as a PNG
    under ``dest/split/<class>/``; return that split folder. An existing ``dest/split`` is refused."""
    import numpy as np
    from PIL import Image

    from zoo_core.progress import Phase

    images, labels, classes = _in_memory(dataset)
    if images.shape[1] not in (1, 3):
        raise BadInputError(
            f"Only grey (1) or RGB (3) images can be written as PNG, not {images.shape[1]} channels"
        )
    for name in classes:
        if not name or name.startswith(".") or "/" in name or os.sep in name:
            raise BadInputError(f"Class name {name!r} cannot be a folder name")
    target = Path(dest) / split
    if target.exists():
        raise BadInputError(f"{target} already exists; remove it or choose another directory")
    partial = Path(dest) / f".{split}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for name in classes:
        (partial / name).mkdir(parents=True)
    pixels = images.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    ys = labels.cpu().tolist()
    width = max(5, len(str(len(ys) - 1)))

    def write(start: int) -> int:
        stop = min(start + _CHUNK, len(ys))
        for i in range(start, stop):
            array = pixels[i, :, :, 0] if pixels.shape[3] == 1 else pixels[i]
            Image.fromarray(np.ascontiguousarray(array)).save(partial / classes[ys[i]] / f"{i:0{width}d}.png")
        return stop - start

    try:
        with (
            ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool,  # zlib compression releases the GIL
            Phase(f"exporting {split} to {dest}", total=len(ys), enabled=progress) as bar,
        ):
            for written in pool.map(write, range(0, len(ys), _CHUNK)):
                bar.update(written)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.replace(partial, target)
    return target


def _in_memory(dataset: object) -> tuple:
    images, labels, classes = (getattr(dataset, a, None) for a in ("images", "labels", "classes"))
    if images is None or labels is None or classes is None:
        raise BadInputError("Only in-memory data sets (with images, labels and classes) can be exported")
    return images, labels, list(classes)


def splits_to_export(split: str, available: Iterator[str] | tuple[str, ...] | list[str]) -> list[str]:
    """``all`` → every available split; else the one named, which must be available."""
    available = list(available)
    if split == "all":
        return available
    if split not in available:
        raise BadInputError(f"Unknown split {split!r}: valid splits are {', '.join(available)} or all")
    return [split]
