"""An ImageFolder split read from disk image by image, for trees that do not fit in memory. DataLoader workers
(``zoo_core.data.loader.StreamLoader``) call ``__getitem__``: one file decoded and resized to the stored size
by the one decoder (``zoo_core.data.decode.decode_image``, as the in-memory split is) into a uint8 C×H×W
tensor. The sample order, sharding and resumption are the loader's, pure functions of (seed, epoch), as for
the in-memory path. A file that cannot be read is replaced by the next readable one in the list (with its
label), said on stderr naming both, so a batch keeps its size and a worker never dies; with ``strict`` it is
fatal. mean/std come from up to ``STATS_IMAGES`` evenly spaced images, decoded in parallel once and cached
beside the in-memory caches.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from zoo_core.data.dataset import cropped_size
from zoo_core.data.decode import (
    decode_image,
    exif_orientation,
    fast_jpeg_header,
    one_thread,
    skip_or_fail,
    unreadable,
)
from zoo_core.data.root import read_cache, write_cache
from zoo_core.data.stats import channel_moments as channel_moments_of
from zoo_core.data.stats import stats_from_moments
from zoo_core.errors import ZooError
from zoo_core.progress import Phase

STATS_IMAGES = 512
STATS_CHUNK = 8  # images a worker reduces per task


class StreamingImageFolder(torch.utils.data.Dataset):
    """``files`` (path relative to ``split_dir``, size, mtime, label) of one split, decoded on demand."""

    def __init__(
        self,
        split_dir: Path,
        files: Sequence[tuple[str, int, int, int]],
        classes: Sequence[str],
        *,
        size: tuple[int, int],
        channels: int,
        strict: bool = False,
        cache_file: Path | None = None,
        workers: int | None = None,
        crop_pct: float = 1.0,
        keep_aspect: bool = False,
        recipe: dict | None = None,
        decode: str = "workers",
    ) -> None:
        self.split_dir = Path(split_dir)
        self.paths = [f[0] for f in files]
        self.targets = [int(f[3]) for f in files]
        self.classes = list(classes)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.size, self.channels, self.strict = size, channels, strict
        self.crop_pct, self.keep_aspect = crop_pct, keep_aspect  # as in InMemoryDataset / decode_image
        self.decode = decode  # "workers", or "device": JPEGs decode a batch at a time on the loader's device
        self.input_size = (channels, *cropped_size(size, crop_pct))  # what the model sees
        self.mean, self.std = self._stats(cache_file, workers)
        if recipe is None:
            from zoo_plugins.datasets import imagefolder_recipe

            recipe = imagefolder_recipe(len(self.paths))
        self.recipe = recipe

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._read(index, lambda path: decode_image(path, self.size, self.channels, self.keep_aspect))

    def encoded(self, index: int) -> tuple[tuple[torch.Tensor, int], int]:
        """What a worker sends when JPEGs decode on the device (``decode="device"``): ((a JPEG's bytes as a
        1-D uint8 tensor, or any other image decoded at the stored size; the index of the file read), label).
        Only the JPEGs the decoder's fast path reads, and upright ones (the device decoder ignores EXIF),
        go as bytes: every other file decodes here, so the device sees what the workers would."""

        def read(path: Path) -> np.ndarray:
            data = path.read_bytes()
            if fast_jpeg_header(data) is not None and exif_orientation(data) == 1:
                return np.frombuffer(data, dtype=np.uint8)
            return decode_image(path, self.size, self.channels, self.keep_aspect, data=data)

        read_from: list[int] = []
        image, label = self._read(index, read, read_from)
        return (image, read_from[0]), label

    def decode_batch(
        self, items: Sequence[tuple[torch.Tensor, int]], device: torch.device
    ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """The uint8 batch at the stored size on ``device`` from the workers' ``encoded`` items, and the
        (position, stand-in position) pairs where a JPEG did not decode and another image of the batch
        takes its place (its label too: the caller's part), said on stderr; fatal with ``strict``."""
        from zoo_plugins.datasets.device_decode import decode_batch

        x, failed = decode_batch([t for t, _ in items], device, self.size, self.channels, self.keep_aspect)
        stand_ins = []
        for k in failed:
            path = self.split_dir / self.paths[items[k][1]]
            reason = f"{path} (the JPEG did not decode on {device})"
            skip_or_fail(reason, self.strict)
            good = [j % len(items) for j in range(k + 1, k + len(items)) if j % len(items) not in failed]
            if not good:
                raise ZooError(f"None of the {len(items)} images of a batch under {self.split_dir} decoded")
            x[k].copy_(x[good[0]])
            stand_ins.append((k, good[0]))
        return x, stand_ins

    def _read(
        self, index: int, decode: Callable[[Path], np.ndarray], read_from: list[int] | None = None
    ) -> tuple[torch.Tensor, int]:
        for step in range(len(self.paths)):
            i = (index + step) % len(self.paths)
            path = self.split_dir / self.paths[i]
            try:
                array = decode(path)
            except Exception as exc:  # Pillow raises many types for a damaged file
                reason = unreadable(path, exc)
                skip_or_fail(reason, self.strict)
                continue
            if step:
                print(
                    f"zoo: warning: {self.paths[i]} stands in for the unreadable {self.paths[index]}",
                    file=sys.stderr,
                    flush=True,
                )
            # a writable copy where the decoder's buffer is read-only (Pillow's); torchvision's is not
            image = torch.from_numpy(array if array.flags.writeable else np.array(array))
            if image.dim() == 2:
                image = image[None]
            elif image.dim() == 3:  # C×H×W as the decoder laid it out (H×W×C in memory): the DataLoader's
                image = image.permute(2, 0, 1)  # stacking of the batch is the one copy that reorders it
            if read_from is not None:
                read_from.append(i)
            return image, self.targets[i]
        raise ZooError(f"None of the {len(self.paths)} images under {self.split_dir} could be read")

    def _stats(self, cache_file: Path | None, workers: int | None) -> tuple[tuple[float, ...], ...]:
        """Per-channel mean and std in [0, 1] of up to STATS_IMAGES evenly spaced images (cached)."""
        saved = read_cache(cache_file, "mean", "std")
        if saved is not None:
            return tuple(saved[0]), tuple(saved[1])
        step = max(1, len(self.paths) // STATS_IMAGES)
        names = self.paths[::step][:STATS_IMAGES]
        n_workers = max(1, min(workers or os.cpu_count() or 1, 8))
        # chunks of a few images, so that progress moves while large photos decode
        chunks = [names[i : i + STATS_CHUNK] for i in range(0, len(names), STATS_CHUNK)]
        n, folder = len(chunks), str(self.split_dir)
        args = ([folder] * n, chunks, [self.size] * n, [self.channels] * n, [self.keep_aspect] * n)
        results = []
        with (
            Phase(f"channel statistics of {self.split_dir} ({len(names)} images)", len(names)) as phase,
            ProcessPoolExecutor(min(n, n_workers), initializer=one_thread)
            if n_workers > 1
            else nullcontext() as pool,
        ):
            for result in (pool.map if pool is not None else map)(channel_moments, *args):
                results.append(result)
                phase.update(len(result))
        moments = [m for chunk in results for m in chunk if m is not None]
        if not moments:
            raise ZooError(f"None of the {len(names)} sampled images under {self.split_dir} could be read")
        count = sum(m[0] for m in moments)
        total = np.sum([m[1] for m in moments], axis=0)
        mean, std = stats_from_moments(count, total, np.sum([m[2] for m in moments], axis=0))
        write_cache(cache_file, {"mean": mean, "std": std, "images": len(moments)})
        return mean, std


def channel_moments(
    split_dir: str, names: list[str], size: tuple[int, int], channels: int, keep_aspect: bool
) -> list[tuple[int, np.ndarray, np.ndarray] | None]:
    """Per image of ``names``: its ``stats.channel_moments`` (pixels per channel, the sums of the levels and
    of their squares, exact), or None where it does not decode. Reduced here, in the worker, so what
    travels back is a few numbers an image rather than the image: a sample of 512 photos at 2048 px would
    otherwise be 8 GB of arrays."""
    out: list[tuple[int, np.ndarray, np.ndarray] | None] = []
    for name in names:
        try:
            array = decode_image(os.path.join(split_dir, name), size, channels, keep_aspect)
        except Exception:  # Pillow raises many types for a damaged file; the sample skips it
            out.append(None)
            continue
        out.append(channel_moments_of(array))
    return out
