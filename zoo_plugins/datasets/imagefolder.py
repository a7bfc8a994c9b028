"""ImageFolder trees ``<root>/<split>/<class>/<image>``: decoded once in parallel, then cached as uint8
tensors keyed by the tree's content (paths, sizes, modification times), so the next run starts at once; or,
when the tree does not fit in memory, streamed from disk (``imagefolder_stream``). Which of the two is
decided before any image is decoded, by the memory plan (``zoo_core.data.memory``)."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo_core.data.dataset import InMemoryDataset, cropped_size, stored_size
from zoo_core.data.decode import (
    decode_image,
    one_thread,
    skip_or_fail,
    unreadable,
)
from zoo_core.data.memory import DATA_MODES, RAM_COPIES, MemoryPlan, free_ram, plan_data_mode
from zoo_core.data.root import default_cache_dir, resolve_data_root
from zoo_core.data.stats import channel_stats
from zoo_core.errors import BadInputError, ZooError
from zoo_core.notices import say_once
from zoo_core.progress import Phase
from zoo_plugins.datasets import imagefolder_recipe
from zoo_plugins.datasets.imagefolder_stream import StreamingImageFolder
from zoo_plugins.datasets.imagefolder_tree import (
    AUTO_SIZE_CAP,
    auto_size,
    cache_key,
    first_size,
    guess_channels,
    list_splits,
    size_pair,
    tree_files,
    visible_dirs,
)

__all__ = [
    "AUTO_SIZE_CAP",
    "CROP_PCT",
    "LARGE_SIDE",
    "decode_chunk",
    "decode_image",
    "imagefolder",
    "list_splits",
    "read_files",
    "read_image_tree",
    "visible_dirs",
]
DECODERS = ("workers", "device")  # where a streamed split decodes its JPEGs
_CHUNK = 512  # files per decoding task: enough to amortise a worker round trip
# images whose shorter side is at least LARGE_SIDE (after --image-size) train ImageNet-style: stored at
# size / CROP_PCT (shorter side resized, centre crop), random resized crops in training, the centre crop in
# evaluation, as timm and torchvision train ImageNet (crop_pct 0.875: 224 out of 256)
LARGE_SIDE = 128
CROP_PCT = 0.875


def imagefolder(
    *,
    root: Path | None = None,
    split: str = "train",
    download: bool = False,
    image_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    strict: bool = False,
    cache: bool = True,
    cache_dir: Path | None = None,
    workers: int | None = None,
    data_mode: str = "auto",
    crop_pct: float | None = None,
    decode: str = "workers",
) -> InMemoryDataset | StreamingImageFolder:
    """Any <root>/<split>/<class>/<image> tree, decoded once and cached as uint8 tensors, or streamed.

    ``root`` is the tree itself. Classes are the sorted class folders of all splits together (so every split
    numbers them alike); hidden folders and files are skipped. ``image_size`` (N or (H, W)) resizes every
    image; without it images of one size stay as they are, and images of mixed sizes (in any split) are all
    resized to their median size, its shorter side capped at AUTO_SIZE_CAP (said in one line on stderr).
    ``channels`` forces 1 (grey) or 3 (RGB); by default grey only when every image is. Unreadable images are
    skipped with a warning naming them, or fatal with ``strict``. mean/std are computed over the split; its
    ``recipe`` is the imagefolder recipe sized to the number of images (``imagefolder_recipe``).

    ``data_mode``: "memory" holds the split in memory (it fails at once, exit 2, when the memory plan says it
    cannot fit), "stream" reads it from disk image by image (``StreamingImageFolder``), "auto" (default)
    asks the memory plan: the uint8 tensor, twice while decoding, against 80% of the free RAM. The plan's
    line goes to stderr when the split streams, when the mode was forced or when it needs 1 GB or more.

    Large images (shorter side ≥ LARGE_SIDE after ``image_size``) are read ImageNet-style: ``image_size``
    is what the model sees; the images are stored at ``image_size / crop_pct`` (default CROP_PCT, 0.875),
    their shorter side resized and the rest centre-cropped; the recipe trains on random resized crops and
    evaluation takes the centre crop. ``crop_pct=1`` stores them at ``image_size`` (no evaluation crop).

    ``decode`` (streamed splits): "workers" (default) decodes every image in the DataLoader workers;
    "device" has the workers send JPEGs' bytes and decodes them a batch at a time on the training device
    (nvJPEG on a GPU, ``device_decode``), other formats still in the workers.
    """
    if download:
        raise BadInputError(
            "imagefolder has nothing to download: point --data-dir at a <split>/<class>/<image> tree"
        )
    return read_image_tree(
        resolve_data_root(root),
        split,
        image_size=image_size,
        channels=channels,
        strict=strict,
        cache=cache,
        cache_dir=cache_dir,
        workers=workers,
        data_mode=data_mode,
        crop_pct=crop_pct,
        decode=decode,
    )


def read_image_tree(
    root: Path,
    split: str,
    *,
    classes: Sequence[str] | None = None,
    image_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    strict: bool = False,
    cache: bool = True,
    cache_dir: Path | None = None,
    workers: int | None = None,
    data_mode: str = "auto",
    crop_pct: float | None = None,
    decode: str = "workers",
) -> InMemoryDataset | StreamingImageFolder:
    """Read ``root/split/<class>/…`` (see ``imagefolder``); ``classes`` fixes the class list and order."""
    size = size_pair(image_size)
    _check_options(crop_pct, channels, decode, data_mode)
    splits, classes, files = tree_files(root, split, classes)
    if size is None:
        size = auto_size(
            root, splits, classes, {split: files}, (cache_dir or default_cache_dir()) if cache else None
        )
    return read_files(
        root / split,
        files,
        classes,
        size,
        name=split,
        channels=channels,
        strict=strict,
        cache=cache,
        cache_dir=cache_dir,
        workers=workers,
        data_mode=data_mode,
        crop_pct=crop_pct,
        decode=decode,
    )


def read_files(
    split_dir: Path,
    files: list[tuple[str, int, int, int]],
    classes: Sequence[str],
    size: tuple[int, int] | None,
    *,
    name: str,
    channels: int | None = None,
    strict: bool = False,
    cache: bool = True,
    cache_dir: Path | None = None,
    workers: int | None = None,
    data_mode: str = "auto",
    crop_pct: float | None = None,
    decode: str = "workers",
) -> InMemoryDataset | StreamingImageFolder:
    """A split given as its files (path relative to ``split_dir``, size, mtime_ns, label), read as
    ``imagefolder`` reads a tree's split: held in memory (cached, keyed by ``name`` and the files) or
    streamed, as the memory plan says; ``size`` (H, W) or None (the images' own, one size)."""
    _check_options(crop_pct, channels, decode, data_mode)
    shape = size or first_size(split_dir, files)  # one header read when no size was chosen
    large = min(shape) >= LARGE_SIDE
    crop = float(crop_pct if crop_pct is not None else (CROP_PCT if large else 1.0))
    keep_aspect = crop < 1 and size is not None
    if crop < 1:  # the model sees the centre crop of what is stored: the chosen size, or less
        seen = size or cropped_size(shape, crop)
        if size is not None:
            size = shape = stored_size(size, crop)
        _announce_crop(split_dir.parent, seen, shape, crop, large)
    key = cache_key(name, {"size": size, "fit": "cover"} if keep_aspect else size, channels, classes, files)
    cache_file = (cache_dir or default_cache_dir()) / f"imagefolder-{key}.pt"
    cached = cache and cache_file.is_file()
    plan = _memory_plan(split_dir, files, shape, channels, data_mode, cached)
    if plan.mode == "stream":
        return StreamingImageFolder(
            split_dir,
            files,
            classes,
            size=shape,
            channels=channels or guess_channels(split_dir, files),
            strict=strict,
            cache_file=cache_file.with_name(f"imagefolder-stats-{key}.json") if cache else None,
            workers=workers,
            crop_pct=crop,
            keep_aspect=keep_aspect,
            recipe=imagefolder_recipe(len(files), large=large),
            decode=decode,
        )
    saved = _load(cache_file, split_dir, strict) if cached else None
    if saved is None:
        saved = _decode_split(split_dir, files, size, channels, workers, keep_aspect, strict)
        if cache:
            with Phase(f"writing the image cache {cache_file}", unit="step"):
                _save(saved, cache_file)
    return _dataset(saved, classes, crop, large)


def _check_options(crop_pct: Any, channels: Any, decode: str, data_mode: str) -> None:
    if crop_pct is not None and not (isinstance(crop_pct, int | float) and 0 < crop_pct <= 1):
        raise BadInputError(f"crop_pct must be a number in (0, 1], not {crop_pct!r}")
    if channels not in (None, 1, 3):
        raise BadInputError(f"channels must be 1 or 3, not {channels}")
    if decode not in DECODERS:
        raise BadInputError(f"--decode must be one of {', '.join(DECODERS)}, not {decode!r}")
    if data_mode not in DATA_MODES:
        raise BadInputError(f"--data-mode must be one of {', '.join(DATA_MODES)}, not {data_mode!r}")


def _load(cache_file: Path, split_dir: Path, strict: bool) -> dict[str, Any] | None:
    """A split's cached tensors, its skipped files reported again; None when the cache does not read."""
    try:
        saved = torch.load(cache_file, weights_only=True)
    except Exception as exc:  # a damaged cache is rebuilt, never fatal
        warnings.warn(f"Ignoring unreadable cache {cache_file}: {exc}", stacklevel=3)
        return None
    _report_skipped(split_dir, saved["skipped"], strict)
    return saved


def _decode_split(
    split_dir: Path,
    files: list[Any],
    size: tuple[int, int] | None,
    channels: int | None,
    workers: int | None,
    keep_aspect: bool,
    strict: bool,
) -> dict[str, Any]:
    """Every file of a split decoded and stacked, with its labels, statistics and skipped files."""
    arrays, skipped = _decode_all(split_dir, files, size, channels, workers, keep_aspect)
    _report_skipped(split_dir, skipped, strict)
    ok = [i for i, a in enumerate(arrays) if a is not None]
    if not ok:
        raise ZooError(f"None of the {len(files)} images under {split_dir} could be read")
    with Phase(f"stacking {len(ok):,} images of {split_dir} and their channel statistics", unit="step"):
        images = _stack(split_dir, [arrays[i] for i in ok], [files[i][0] for i in ok])
        mean, std = channel_stats(images)
    labels = torch.tensor([files[i][3] for i in ok], dtype=torch.int64)
    return {"images": images, "labels": labels, "mean": list(mean), "std": list(std), "skipped": skipped}


def _memory_plan(
    split_dir: Path,
    files: list[Any],
    size: tuple[int, int],
    channels: int | None,
    data_mode: str,
    cached: bool,
) -> MemoryPlan:
    """The memory plan of a split of images of ``size`` (H, W), from its file list: stream or hold it."""
    height, width = size
    plan = plan_data_mode(
        data_mode,
        images=len(files),
        shape=(channels or 3, height, width),  # 3 channels until decoded: the larger guess
        free=free_ram(),
        where="free RAM",
        copies=1 if cached else RAM_COPIES,  # a cached tensor is read once; decoding stacks a copy
        what=f"imagefolder {split_dir}",
    )
    if data_mode == "memory" and not plan.fits:
        raise BadInputError(f"{plan.line}, which cannot fit: --data-mode stream or auto reads it from disk")
    if plan.mode == "stream" or data_mode != "auto" or plan.need >= 1e9:
        say_once(("imagefolder plan", str(split_dir), plan.mode), plan.line)
    return plan


def _decode_all(
    split_dir: Path,
    files: list[Any],
    size: tuple[int, int] | None,
    channels: int | None,
    workers: int | None,
    keep_aspect: bool = False,
) -> tuple[list[np.ndarray | None], list[str]]:
    """Decode every file, in worker processes when there are many: decoding a small image is mostly
    Python-level work that holds the GIL, so threads do not help."""
    names = [f[0] for f in files]
    chunks = [names[i : i + _CHUNK] for i in range(0, len(names), _CHUNK)]
    n_workers = min(workers or os.cpu_count() or 1, len(chunks))
    n = len(chunks)
    results = []
    with (
        Phase(f"decoding {split_dir} into memory", total=len(names)) as bar,
        ProcessPoolExecutor(n_workers, initializer=one_thread) if n_workers > 1 else nullcontext() as pool,
    ):
        mapper = pool.map if pool is not None else map
        args = ([str(split_dir)] * n, chunks, [size] * n, [channels] * n, [keep_aspect] * n)
        for result in mapper(decode_chunk, *args):
            results.append(result)
            bar.update(len(result))
    arrays = [a for chunk in results for a, _ in chunk]
    errors = [e for chunk in results for _, e in chunk if e is not None]
    if channels is None and any(a is not None and a.ndim == 3 for a in arrays):
        arrays = [a if a is None or a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
    return arrays, errors


def decode_chunk(
    split_dir: str,
    names: list[str],
    size: tuple[int, int] | None,
    channels: int | None,
    keep_aspect: bool = False,
) -> list[tuple[np.ndarray | None, str | None]]:
    """(array, None) for each image that decodes, (None, "path (error)") for each that does not."""
    out: list[tuple[np.ndarray | None, str | None]] = []
    for name in names:
        path = os.path.join(split_dir, name)
        try:
            out.append((decode_image(path, size, channels, keep_aspect), None))
        except Exception as exc:  # Pillow raises many types for a damaged file
            out.append((None, unreadable(path, exc)))
    return out


def _stack(split_dir: Path, arrays: list[np.ndarray], paths: list[str]) -> torch.Tensor:
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape[:2]
        other = next(i for i, a in enumerate(arrays) if a.shape[:2] != first)
        raise BadInputError(
            f"Images under {split_dir} have different sizes ({first[1]}×{first[0]} in {paths[0]}, "
            f"{arrays[other].shape[1]}×{arrays[other].shape[0]} in {paths[other]}); "
            "pass --image-size N to resize them all"
        )
    stacked = np.stack(arrays)
    stacked = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(stacked))


def _report_skipped(split_dir: Path, skipped: list[str], strict: bool) -> None:
    if not skipped:
        return
    if strict:
        skip_or_fail(skipped[0], strict)
    shown = "; ".join(skipped[:3]) + ("; …" if len(skipped) > 3 else "")
    warnings.warn(f"Skipped {len(skipped)} unreadable image(s) under {split_dir}: {shown}", stacklevel=3)


def _save(saved: dict[str, Any], cache_file: Path) -> None:
    """Write the cache atomically; a cache that cannot be written costs only the next run's time."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{cache_file.name}.", dir=cache_file.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(saved, f)
            os.replace(tmp, cache_file)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        warnings.warn(f"Could not write the image cache {cache_file}: {exc}", stacklevel=3)


def _dataset(saved: dict[str, Any], classes: Sequence[str], crop_pct: float, large: bool) -> InMemoryDataset:
    return InMemoryDataset(
        images=saved["images"],
        labels=saved["labels"],
        classes=list(classes),
        mean=tuple(saved["mean"]),
        std=tuple(saved["std"]),
        recipe=imagefolder_recipe(len(saved["labels"]), large=large),
        crop_pct=crop_pct,
    )


def _announce_crop(
    root: Path, seen: tuple[int, int], stored: tuple[int, int], crop_pct: float, large: bool
) -> None:
    """Say once per process and tree how its images are cut for the model (ImageNet-style when large)."""
    style = f"shorter side ≥ {LARGE_SIDE}: ImageNet-style" if large else f"crop_pct {crop_pct:g}"
    training = "random resized crops" if large else "crops"
    say_once(
        ("imagefolder crop", str(root), seen, stored, crop_pct),
        f"imagefolder: {root} ({style}): images stored at {stored[1]}×{stored[0]}, {training} of "
        f"{seen[1]}×{seen[0]} in training, the centre {seen[1]}×{seen[0]} (crop_pct {crop_pct:g}) in "
        "evaluation and prediction",
    )
