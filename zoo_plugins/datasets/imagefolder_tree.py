"""An ImageFolder tree's layout, read without decoding a picture: its splits, classes and files, the size
its images are read at (the headers alone), and the content key of the caches."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo_core.data.decode import GRAY_MODES, picture_size
from zoo_core.data.root import read_cache, write_cache
from zoo_core.errors import BadInputError, DataNotFoundError, ZooError
from zoo_core.notices import say_once
from zoo_core.progress import Phase, track

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".pbm", ".gif", ".tif", ".tiff", ".webp"}
# 3: one decoder for every reader (zoo_core.data.decode): upright by EXIF, alpha on white, no draft mode
CACHE_VERSION = 3
# images of mixed sizes are resized to their median size with its shorter side at most this: the size of
# Tiny ImageNet, which zoo's CIFAR-style models (no stem down-sampling) train on well; --image-size for more
AUTO_SIZE_CAP = 64


def first_size(split_dir: Path, files: list[Any]) -> tuple[int, int]:
    """(H, W) of the first image whose header reads (all have one size when no size was chosen)."""
    for name, *_ in files:
        try:
            width, height = picture_size(split_dir / name)
            return height, width
        except Exception:  # unreadable: reported when it is decoded
            continue
    raise ZooError(f"None of the {len(files)} images under {split_dir} could be read")


def guess_channels(split_dir: Path, files: list[Any], sample: int = 64) -> int:
    """1 when every one of up to ``sample`` evenly spaced images is grey, else 3 (read from headers)."""
    from PIL import Image

    step = max(1, len(files) // sample)
    for name, *_ in files[::step][:sample]:
        try:
            with Image.open(split_dir / name) as img:
                if img.mode not in GRAY_MODES:
                    return 3
        except Exception:
            continue
    return 1


def tree_files(
    root: Path, split: str, classes: Sequence[str] | None
) -> tuple[list[str], list[str], list[tuple[str, int, int, int]]]:
    """(the tree's splits, its classes, the files of ``split``): classes are the sorted class folders of all
    splits together unless ``classes`` fixes them; an absent tree, split or image is a one-line error."""
    splits = list_splits(root)
    if split not in splits:
        if not splits:
            raise DataNotFoundError(
                f"No image tree at {root}: expected folders <split>/<class>/<image> in it "
                "(pass --data-dir pointing at the tree)"
            )
        raise BadInputError(f"Split {split!r} not found in {root}: valid splits are {', '.join(splits)}")
    found = sorted({c for s in splits for c in visible_dirs(root / s)})
    if classes is None:
        classes = found
    else:
        classes = list(classes)
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise ZooError(
                f"Unexpected class folder(s) in {root}: {', '.join(unknown)} (expected {', '.join(classes)})"
            )
    files = list_files(root / split, classes)
    if not files:
        raise DataNotFoundError(f"No images under {root / split} (expected {root / split}/<class>/<image>)")
    return splits, list(classes), files


def list_splits(root: Path) -> list[str]:
    """The split folders of a tree (non-hidden folders that hold at least one non-hidden folder)."""
    if not root.is_dir():
        return []
    return [s for s in visible_dirs(root) if visible_dirs(root / s)]


def visible_dirs(folder: Path) -> list[str]:
    """The sorted names of the folders in ``folder`` that are not hidden."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def list_files(split_dir: Path, classes: Sequence[str]) -> list[tuple[str, int, int, int]]:
    """(path relative to split_dir, size, mtime_ns, label) of every image, class by class, names sorted."""
    files = []
    with Phase(f"listing {split_dir}", unit="files") as listing:
        for label, name in enumerate(classes):
            class_dir = split_dir / name
            if not class_dir.is_dir():
                continue
            found = []
            for folder, dirs, names in os.walk(class_dir, followlinks=True):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for file in names:
                    if not file.startswith(".") and os.path.splitext(file)[1].lower() in IMAGE_EXTENSIONS:
                        path = os.path.join(folder, file)
                        st = os.stat(path)
                        found.append((os.path.relpath(path, split_dir), st.st_size, st.st_mtime_ns, label))
                        listing.update(1)
            files += sorted(found)
    return files


def auto_size(
    root: Path,
    splits: Sequence[str],
    classes: Sequence[str],
    listed: dict[str, list[Any]],
    cache_dir: Path | None,
) -> tuple[int, int] | None:
    """None when every image of every split has one size; else the median (H, W) of all of them, scaled
    down so that its shorter side is at most AUTO_SIZE_CAP. All splits count, so that each split of a tree
    gets the same size. Only image headers are read; the answer is cached beside the image cache."""
    files = {s: listed.get(s) or list_files(root / s, classes) for s in splits}
    key = cache_key("sizes", None, None, classes, [files[s] for s in splits])
    cache_file = (cache_dir / f"imagefolder-size-{key}.json") if cache_dir else None
    saved = read_cache(cache_file, "decision")
    if saved is not None:
        return _announce(root, saved[0])
    heights, widths = [], []
    headers = [(s, name) for s in splits for name, *_ in files[s]]
    for s, name in track(headers, f"reading image sizes under {root}", unit="files"):
        try:
            width, height = picture_size(root / s / name)
        except Exception:  # unreadable: reported (or fatal with strict) when the split is decoded
            continue
        heights.append(height)
        widths.append(width)
    decision = None
    if len(set(zip(heights, widths, strict=True))) > 1:
        height, width = float(np.median(heights)), float(np.median(widths))
        scale = min(1.0, AUTO_SIZE_CAP / min(height, width))
        decision = {
            "size": [max(1, round(height * scale)), max(1, round(width * scale))],
            "sizes": len(set(zip(heights, widths, strict=True))),
            "smallest": [min(heights), min(widths)],
            "largest": [max(heights), max(widths)],
        }
    write_cache(cache_file, {"decision": decision})
    return _announce(root, decision)


def _announce(root: Path, decision: dict[str, Any] | None) -> tuple[int, int] | None:
    """The size a decision of ``auto_size`` picks, said once per process and tree on stderr."""
    if not decision:
        return None
    height, width = (int(v) for v in decision["size"])
    say_once(
        ("imagefolder size", str(root), height, width),
        f"imagefolder: the images under {root} have {decision['sizes']} different sizes; all are resized "
        f"to {width}×{height} (their median size, shorter side at most {AUTO_SIZE_CAP}); --image-size N "
        "chooses another",
    )
    return height, width


def size_pair(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise BadInputError(f"image_size must be a positive N or (H, W), not {image_size!r}")
    return pair


def cache_key(split: str, size: Any, channels: Any, classes: Sequence[str], files: list[Any]) -> str:
    content = json.dumps([CACHE_VERSION, split, size, channels, list(classes), files])
    return hashlib.sha256(content.encode()).hexdigest()[:32]
