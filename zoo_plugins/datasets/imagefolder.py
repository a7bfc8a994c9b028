"""ImageFolder trees ``<root>/<split>/<class>/<image>``: decoded once in parallel, then cached as uint8
tensors keyed by the tree's content (paths, sizes, modification times), so the next run starts at once; or,
when the tree does not fit in memory, streamed from disk (``imagefolder_stream``). Which of the two is
decided before any image is decoded, by the memory plan (``zoo_core.data.memory``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from zoo_core.data.dataset import InMemoryDataset, cropped_size, stored_size
from zoo_core.data.decode import (
    GRAY_MODES,
    UnreadableImageError,
    decode_image,
    one_thread,
    picture_size,
    unreadable,
)
from zoo_core.data.memory import DATA_MODES, RAM_COPIES, MemoryPlan, free_ram, plan_data_mode
from zoo_core.data.root import default_cache_dir, resolve_data_root
from zoo_core.data.stats import channel_stats
from zoo_core.errors import BadInputError, DataNotFoundError, ZooError
from zoo_plugins.datasets import imagefolder_recipe
from zoo_plugins.datasets.imagefolder_stream import StreamingImageFolder

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".pbm", ".gif", ".tif", ".tiff", ".webp"}
# 3: one decoder for every reader (zoo_core.data.decode): upright by EXIF, alpha on white, no draft mode
CACHE_VERSION = 3
DECODERS = ("workers", "device")  # where a streamed split decodes its JPEGs
_CHUNK = 512  # files per decoding task: enough to amortise a worker round trip
# images of mixed sizes are resized to their median size with its shorter side at most this: the size of
# Tiny ImageNet, which zoo's CIFAR-style models (no stem down-sampling) train on well; --image-size for more
AUTO_SIZE_CAP = 64
# images whose shorter side is at least LARGE_SIDE (after --image-size) train ImageNet-style: stored at
# size / CROP_PCT (shorter side resized, centre crop), random resized crops in training, the centre crop in
# evaluation, as timm and torchvision train ImageNet (crop_pct 0.875: 224 out of 256)
LARGE_SIDE = 128
CROP_PCT = 0.875
_ANNOUNCED: set[tuple[Any, ...]] = set()
_ANNOUNCED_PLANS: set[tuple[str, str]] = set()


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
    size = _size_pair(image_size)
    if crop_pct is not None and not (isinstance(crop_pct, int | float) and 0 < crop_pct <= 1):
        raise BadInputError(f"crop_pct must be a number in (0, 1], not {crop_pct!r}")
    if channels not in (None, 1, 3):
        raise BadInputError(f"channels must be 1 or 3, not {channels}")
    if decode not in DECODERS:
        raise BadInputError(f"--decode must be one of {', '.join(DECODERS)}, not {decode!r}")
    if data_mode not in DATA_MODES:
        raise BadInputError(f"--data-mode must be one of {', '.join(DATA_MODES)}, not {data_mode!r}")
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
    files = _list_files(root / split, classes)
    if not files:
        raise DataNotFoundError(f"No images under {root / split} (expected {root / split}/<class>/<image>)")
    if size is None:
        size = _auto_size(
            root, splits, classes, {split: files}, (cache_dir or default_cache_dir()) if cache else None
        )

    shape = size or _first_size(root / split, files)  # one header read when no size was chosen
    large = min(shape) >= LARGE_SIDE
    crop = float(crop_pct if crop_pct is not None else (CROP_PCT if large else 1.0))
    keep_aspect = crop < 1 and size is not None
    if crop < 1:  # the model sees the centre crop of what is stored: the chosen size, or less
        seen = size or cropped_size(shape, crop)
        if size is not None:
            size = shape = stored_size(size, crop)
        _announce_crop(root, seen, shape, crop, large)
    key = _cache_key(split, {"size": size, "fit": "cover"} if keep_aspect else size, channels, classes, files)
    cache_file = (cache_dir or default_cache_dir()) / f"imagefolder-{key}.pt"
    cached = cache and cache_file.is_file()
    plan = _memory_plan(root / split, files, shape, channels, data_mode, cached)
    if plan.mode == "stream":
        return StreamingImageFolder(
            root / split,
            files,
            classes,
            size=shape,
            channels=channels or _guess_channels(root / split, files),
            strict=strict,
            cache_file=(cache_dir or default_cache_dir()) / f"imagefolder-stats-{key}.json"
            if cache
            else None,
            workers=workers,
            crop_pct=crop,
            keep_aspect=keep_aspect,
            recipe=imagefolder_recipe(len(files), large=large),
            decode=decode,
        )
    if cached:
        try:
            saved = torch.load(cache_file, weights_only=True)
        except Exception as exc:  # a damaged cache is rebuilt, never fatal
            warnings.warn(f"Ignoring unreadable cache {cache_file}: {exc}", stacklevel=2)
        else:
            _report_skipped(root / split, saved["skipped"], strict)
            return _dataset(saved, classes, crop, large)

    arrays, skipped = _decode_all(root / split, files, size, channels, workers, keep_aspect)
    _report_skipped(root / split, skipped, strict)
    ok = [i for i, a in enumerate(arrays) if a is not None]
    if not ok:
        raise ZooError(f"None of the {len(files)} images under {root / split} could be read")
    images = _stack(root / split, [arrays[i] for i in ok], [files[i][0] for i in ok])
    mean, std = channel_stats(images)
    saved = {
        "images": images,
        "labels": torch.tensor([files[i][3] for i in ok], dtype=torch.int64),
        "mean": list(mean),
        "std": list(std),
        "skipped": skipped,
    }
    if cache:
        _save(saved, cache_file)
    return _dataset(saved, classes, crop, large)


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
        said = (str(split_dir), plan.mode)
        if said not in _ANNOUNCED_PLANS:
            _ANNOUNCED_PLANS.add(said)
            print(plan.line, file=sys.stderr, flush=True)
    return plan


def _first_size(split_dir: Path, files: list[Any]) -> tuple[int, int]:
    """(H, W) of the first image whose header reads (all have one size when no size was chosen)."""
    for name, *_ in files:
        try:
            width, height = picture_size(split_dir / name)
            return height, width
        except Exception:  # unreadable: reported when it is decoded
            continue
    raise ZooError(f"None of the {len(files)} images under {split_dir} could be read")


def _guess_channels(split_dir: Path, files: list[Any], sample: int = 64) -> int:
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


def list_splits(root: Path) -> list[str]:
    """The split folders of a tree (non-hidden folders that hold at least one non-hidden folder)."""
    if not root.is_dir():
        return []
    return [s for s in visible_dirs(root) if visible_dirs(root / s)]


def visible_dirs(folder: Path) -> list[str]:
    """The sorted names of the folders in ``folder`` that are not hidden."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def _list_files(split_dir: Path, classes: Sequence[str]) -> list[tuple[str, int, int, int]]:
    """(path relative to split_dir, size, mtime_ns, label) of every image, class by class, names sorted."""
    files = []
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
        files += sorted(found)
    return files


def _auto_size(
    root: Path,
    splits: Sequence[str],
    classes: Sequence[str],
    listed: dict[str, list[Any]],
    cache_dir: Path | None,
) -> tuple[int, int] | None:
    """None when every image of every split has one size; else the median (H, W) of all of them, scaled
    down so that its shorter side is at most AUTO_SIZE_CAP. All splits count, so that each split of a tree
    gets the same size. Only image headers are read; the answer is cached beside the image cache."""
    files = {s: listed.get(s) or _list_files(root / s, classes) for s in splits}
    key = _cache_key("sizes", None, None, classes, [files[s] for s in splits])
    cache_file = (cache_dir / f"imagefolder-size-{key}.json") if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        try:
            return _announce(root, json.loads(cache_file.read_text()))
        except (OSError, ValueError):
            pass
    heights, widths = [], []
    for s in splits:
        for name, *_ in files[s]:
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
    if cache_file is not None:
        with contextlib.suppress(OSError):
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_text(json.dumps(decision))
    return _announce(root, decision)


def _announce(root: Path, decision: dict[str, Any] | None) -> tuple[int, int] | None:
    """The size a decision of ``_auto_size`` picks, said once per process and tree on stderr."""
    if not decision:
        return None
    height, width = (int(v) for v in decision["size"])
    if (str(root), height, width) not in _ANNOUNCED:
        _ANNOUNCED.add((str(root), height, width))
        print(
            f"imagefolder: the images under {root} have {decision['sizes']} different sizes; all are resized "
            f"to {width}×{height} (their median size, shorter side at most {AUTO_SIZE_CAP}); --image-size N "
            "chooses another",
            file=sys.stderr,
            flush=True,
        )
    return height, width


def _size_pair(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise BadInputError(f"image_size must be a positive N or (H, W), not {image_size!r}")
    return pair


def _cache_key(split: str, size: Any, channels: Any, classes: Sequence[str], files: list[Any]) -> str:
    content = json.dumps([CACHE_VERSION, split, size, channels, list(classes), files])
    return hashlib.sha256(content.encode()).hexdigest()[:32]


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
    # disable=None: a bar on a terminal, silence in logs and tests
    with (
        tqdm(total=len(names), desc=f"decoding {split_dir}", unit="img", disable=None, leave=False) as bar,
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
        raise UnreadableImageError(
            f"Cannot read image {skipped[0]} (without --strict, unreadable images are skipped)"
        )
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
    said = (str(root), "crop", seen, stored, crop_pct)
    if said in _ANNOUNCED:
        return
    _ANNOUNCED.add(said)
    style = f"shorter side ≥ {LARGE_SIDE}: ImageNet-style" if large else f"crop_pct {crop_pct:g}"
    training = "random resized crops" if large else "crops"
    print(
        f"imagefolder: {root} ({style}): images stored at {stored[1]}×{stored[0]}, {training} of "
        f"{seen[1]}×{seen[0]} in training, the centre {seen[1]}×{seen[0]} (crop_pct {crop_pct:g}) in "
        "evaluation and prediction",
        file=sys.stderr,
        flush=True,
    )
