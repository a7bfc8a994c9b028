"""``wds``: WebDataset tar shards (``wds_shards`` finds them and counts their samples), streamed shard by
shard: the loader (``zoo_core.data.shard_feed``) splits each epoch's shards across the ranks and the
DataLoader workers, every sample once per epoch across all ranks, shuffled by (seed, epoch), and resumes
exactly at any batch. Members ``KEY.jpg|jpeg|png|webp`` and ``KEY.cls`` (the class index as text) make one
sample; images are decoded by zoo's one decoder at one size (chosen as imagefolder chooses it). A damaged
member is skipped with its name on stderr (the sample before it stands in), fatal with ``strict``.

Why the ``webdataset`` package does not run the epoch: its ``split_by_node`` / ``split_by_worker`` deal
whole shards round-robin, so ranks get different sample counts (DDP ranks must take the same number of
steps) and nothing resumes mid-epoch. zoo plans the epoch itself (``shard_plan``) and uses webdataset for
what it does well: expanding shard patterns, opening local, http(s) and ``pipe:`` streams, reading tar
members and grouping them by key, and writing shards (``zoo export --format wds``).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import torch

from zoo_core.data.decode import skip_or_fail, unreadable
from zoo_core.data.root import default_cache_dir, read_cache, resolve_data_root, write_cache
from zoo_core.data.stats import channel_stats
from zoo_core.errors import BadInputError, ZooError, require_extra
from zoo_core.progress import track
from zoo_plugins.datasets import imagefolder_recipe
from zoo_plugins.datasets.encoded import Reading, choose_reading, decode_bytes
from zoo_plugins.datasets.wds_shards import (
    IMAGE_EXTS,
    count_samples,
    read_classes,
    read_index,
    shard_samples,
    shard_urls,
)

SIZE_SAMPLE = 64  # images of the first shard whose headers choose the size
STATS_SHARDS, STATS_PER_SHARD = 16, 32  # the samples whose pixels give mean and std

Item = tuple[str, str | None, bytes | None, bytes | None]  # (name, image extension, image, class text)


def wds(
    *,
    root: Path | None = None,
    split: str = "train",
    download: bool = False,
    urls: str | None = None,
    index: str | None = None,
    classes: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    crop_pct: float | None = None,
    strict: bool = False,
    cache: bool = True,
    cache_dir: Path | None = None,
) -> WdsShards:
    """WebDataset shards of ``split``: ``{split}-*.tar`` at ``root``, or ``urls`` (a brace pattern or a
    ``::`` list of paths, http(s) URLs, ``pipe:`` commands; ``{split}`` is replaced by the split). ``index``:
    a shard index (``{split}-shards.json`` beside local shards is found by itself); ``classes``: a class
    list file (``classes.txt`` beside the shards by default). ``image_size``, ``channels``, ``crop_pct``,
    ``strict``: as imagefolder's."""
    require_extra("webdataset", "wds", "the wds data set")
    if download:
        raise BadInputError("wds has nothing to download: point --data-dir or urls= at the shards")
    cache_dir = (cache_dir or default_cache_dir()) if cache else None
    found, folder = shard_urls(resolve_data_root(root), split, urls)
    counts = read_index(folder, split, index, found)
    top = None
    if counts is None:
        counts, top = count_samples(found, cache_dir)
    names = read_classes(folder, found, classes, top)
    if sum(counts) == 0:
        raise BadInputError(f"The {len(found)} shard(s) of {split} hold no samples")
    first = [item[2] for item in islice(_items(found[0]), SIZE_SAMPLE) if item[2] is not None]
    reading = choose_reading(first, image_size, channels, crop_pct)
    return WdsShards(found, counts, names, reading, strict=strict, cache_dir=cache_dir)


def _items(url: str) -> Iterator[Item]:
    """One shard's samples as raw items: (shard:key name, image extension, image bytes, .cls bytes)."""
    shard = url.rsplit("/", 1)[-1]
    for sample in shard_samples(url):
        ext = next((e for e in IMAGE_EXTS if e in sample), None)
        yield f"{shard}:{sample['__key__']}", ext, sample.get(ext) if ext else None, sample.get("cls")


class WdsShards(torch.utils.data.Dataset):
    """One split's shards (``contracts.StreamedDataset``, read shard by shard): ``shard_sizes``,
    ``samples`` and ``decode`` for the loader; ``__getitem__`` reads a shard up to the sample (checks)."""

    def __init__(
        self,
        urls: list[str],
        counts: list[int],
        classes: list[str],
        reading: Reading,
        *,
        strict: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.urls, self.shard_sizes, self.classes = list(urls), list(counts), list(classes)
        self.reading, self.strict = reading, strict
        self.input_size, self.crop_pct = reading.input_size, reading.crop_pct
        self.recipe = imagefolder_recipe(sum(counts), large=reading.large)
        self._ends = [sum(counts[: k + 1]) for k in range(len(counts))]
        self.mean, self.std = self._stats(cache_dir)

    def __len__(self) -> int:
        return self._ends[-1]

    def samples(self, shard: int, start: int, stop: int) -> Iterator[Item]:
        """The raw items of samples ``start .. stop`` of ``shard`` (read, not decoded)."""
        return islice(_items(self.urls[shard]), start, stop)

    def decode(self, item: Item) -> tuple[torch.Tensor, int] | None:
        """(uint8 C×H×W image, label) of a raw item; None for a damaged one, reported on stderr by name
        (fatal with ``strict``)."""
        name, ext, image, label = item
        try:
            if image is None or label is None:
                missing = "an image member" if image is None else "a .cls member"
                raise ValueError(f"no {missing}")
            cls = int(label.decode().strip())
            if not 0 <= cls < len(self.classes):
                raise ValueError(f"class {cls} is not among the {len(self.classes)} classes")
            return decode_bytes(image, f"{name}.{ext}", self.reading), cls
        except Exception as exc:  # Pillow raises many types for a damaged file
            skip_or_fail(unreadable(f"{name}.{ext or '?'}", exc), self.strict)
            return None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for step in range(len(self)):
            i = (index + step) % len(self)
            shard = bisect.bisect_right(self._ends, i)
            at = i - (self._ends[shard - 1] if shard else 0)
            decoded = self.decode(next(iter(self.samples(shard, at, at + 1))))
            if decoded is not None:
                return decoded
        raise ZooError(f"None of the {len(self)} samples of the shards could be read")

    def _stats(self, cache_dir: Path | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the first STATS_PER_SHARD samples of up to STATS_SHARDS evenly
        spaced shards (cached by the shard list and reading)."""
        content = json.dumps([self.urls, self.shard_sizes, self.reading.stored, self.reading.channels])
        key = hashlib.sha256(content.encode()).hexdigest()[:32]
        cache_file = cache_dir / f"wds-stats-{key}.json" if cache_dir else None
        saved = read_cache(cache_file, "mean", "std")
        if saved is not None:
            return tuple(saved[0]), tuple(saved[1])
        step = max(1, len(self.urls) // STATS_SHARDS)
        images = []
        for shard in track(
            range(0, len(self.urls), step)[:STATS_SHARDS], "channel statistics", unit="shards"
        ):
            for item in self.samples(shard, 0, min(STATS_PER_SHARD, self.shard_sizes[shard])):
                decoded = self.decode(item)
                if decoded is not None:
                    images.append(decoded[0])
        if not images:
            raise ZooError("None of the sampled images of the shards could be read")
        mean, std = channel_stats(torch.stack(images))
        write_cache(cache_file, {"mean": mean, "std": std})
        return mean, std
