"""Writing any data set as shards: WebDataset tar files (``{split}-NNNNNN.tar`` of ``KEY.png`` and
``KEY.cls``, with ``classes.txt`` and the shard index ``{split}-shards.json``, through the ``webdataset``
package) or parquet files (``{split}-NNNNN-of-NNNNN.parquet`` with an ``image`` Image column and a
``label`` ClassLabel column, through the ``datasets`` package), ``shard_size`` samples a file.

Images are written as PNG, lossless, so a split read back at its stored size gives the same pixels and
labels. Keys are each sample's index in the split. A split is written into a hidden folder and its files
moved into place when complete, so an interrupted export never leaves shards that read as a smaller set.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo_core import contracts
from zoo_core.errors import BadInputError, require_extra
from zoo_core.progress import Phase

INDEX_KIND = "wids-shard-index-v1"  # webdataset's indexed-shards (wids) format of a shard index
SHARD_SIZE = 10_000  # samples a shard by default: ~1 GB of 224-px photos, webdataset's usual size


def samples_of(dataset: Any) -> Iterator[tuple[Any, int]]:
    """Every (uint8 C×H×W image, label) of a data set in its order: in memory, read shard by shard, or
    indexed."""
    if contracts.is_in_memory(dataset):
        yield from zip(dataset.images, dataset.labels.tolist(), strict=True)
    elif contracts.is_sharded(dataset):
        for shard, size in enumerate(dataset.shard_sizes):
            for item in dataset.samples(shard, 0, size):
                decoded = dataset.decode(item)
                if decoded is not None:
                    yield decoded
    else:
        for i in range(len(dataset)):
            yield dataset[i]


def png_bytes(image: Any) -> bytes:
    """A uint8 C×H×W tensor (1 or 3 channels) as a PNG file's bytes."""
    from PIL import Image

    if image.shape[0] not in (1, 3):
        raise BadInputError(f"Only grey (1) or RGB (3) images can be written as PNG, not {image.shape[0]}")
    pixels = image.permute(1, 2, 0).contiguous().cpu().numpy()
    out = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(out, format="PNG")
    return out.getvalue()


def _count(dataset: Any) -> int:
    return len(dataset.labels) if contracts.is_in_memory(dataset) else len(dataset)


def _shards(dataset: Any, shard_size: int, what: str) -> Iterator[list[tuple[bytes, int]]]:
    """The data set's samples as PNGs, ``shard_size`` to a list."""
    if shard_size < 1:
        raise BadInputError(f"--shard-size must be at least 1, not {shard_size}")
    chunk: list[tuple[bytes, int]] = []
    with Phase(what, total=_count(dataset)) as bar:
        for image, label in samples_of(dataset):
            chunk.append((png_bytes(image), int(label)))
            bar.update(1)
            if len(chunk) == shard_size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _classes_file(dest: Path, classes: list[str]) -> None:
    """``classes.txt`` in ``dest``, one name a line; one already there must list the same classes."""
    for name in classes:
        if not name.strip() or "\n" in name:
            raise BadInputError(f"Class name {name!r} cannot be a line of classes.txt")
    path = dest / "classes.txt"
    text = "".join(f"{name}\n" for name in classes)
    if path.is_file() and path.read_text() != text:
        raise BadInputError(f"{path} lists other classes than this data set's")
    path.write_text(text)


def write_shard_index(folder: Path, split: str, names: list[str], counts: list[int]) -> Path:
    """``{split}-shards.json`` in wids' format: each shard's name (relative to the index) and samples."""
    import json

    path = folder / f"{split}-shards.json"
    shardlist = [{"url": n, "nsamples": c} for n, c in zip(names, counts, strict=True)]
    path.write_text(json.dumps({"__kind__": INDEX_KIND, "name": split, "shardlist": shardlist}, indent=1))
    return path


def _into_place(partial: Path, dest: Path) -> list[Path]:
    moved = []
    for file in sorted(partial.iterdir()):
        os.replace(file, dest / file.name)
        moved.append(dest / file.name)
    partial.rmdir()
    return moved


def _refuse_existing(dest: Path, split: str) -> Path:
    taken = sorted(dest.glob(f"{split}-*")) if dest.is_dir() else []
    if taken:
        raise BadInputError(
            f"{taken[0]} already exists; remove the {split} files or choose another directory"
        )
    partial = dest / f".{split}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return partial


def export_wds(dataset: Any, dest: str | Path, split: str, *, shard_size: int = SHARD_SIZE) -> list[Path]:
    """Write ``dataset`` as WebDataset shards ``dest/{split}-NNNNNN.tar``; return the files written."""
    require_extra("webdataset", "wds", "zoo export --format wds")
    from webdataset import TarWriter

    dest = Path(dest)
    partial = _refuse_existing(dest, split)
    names, counts, key = [], [], 0
    try:
        for k, chunk in enumerate(_shards(dataset, shard_size, f"exporting {split} to {dest} (wds)")):
            names.append(f"{split}-{k:06d}.tar")
            with TarWriter(str(partial / names[-1])) as sink:
                for png, label in chunk:
                    sink.write({"__key__": f"{key:08d}", "png": png, "cls": str(label).encode()})
                    key += 1
            counts.append(len(chunk))
        write_shard_index(partial, split, names, counts)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _classes_file(dest, list(dataset.classes))
    return _into_place(partial, dest)


def export_parquet(dataset: Any, dest: str | Path, split: str, *, shard_size: int = SHARD_SIZE) -> list[Path]:
    """Write ``dataset`` as parquet files ``dest/{split}-NNNNN-of-NNNNN.parquet`` (Hugging Face's layout);
    return the files written."""
    datasets = require_extra("datasets", "hf", "zoo export --format parquet")
    datasets.disable_progress_bars()  # type: ignore[attr-defined]  # zoo's own progress line says it
    dest = Path(dest)
    partial = _refuse_existing(dest, split)
    features = datasets.Features(  # type: ignore[attr-defined]
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(dataset.classes))}  # type: ignore[attr-defined]
    )
    total = -(-_count(dataset) // max(1, shard_size))
    try:
        for k, chunk in enumerate(_shards(dataset, shard_size, f"exporting {split} to {dest} (parquet)")):
            rows = {
                "image": [{"bytes": png, "path": None} for png, _ in chunk],
                "label": [y for _, y in chunk],
            }
            table = datasets.Dataset.from_dict(rows, features=features)  # type: ignore[attr-defined]
            table.to_parquet(str(partial / f"{split}-{k:05d}-of-{total:05d}.parquet"))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return _into_place(partial, dest)
