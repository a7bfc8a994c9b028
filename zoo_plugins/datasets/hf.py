"""``hf``: a Hugging Face ``datasets`` data set — a DatasetDict saved with ``save_to_disk``, parquet files
``{split}-*.parquet`` (the hub's layout, also under ``data/``), or a hub name where the network allows —
read through the ``datasets`` package (``pip install 'zoo-models[hf]'``).

The image and label columns are found from the features (the first ``Image`` column; the first
``ClassLabel``, whose names become the classes, else an integer column named label/labels), or named with
``--dataset-arg image=COL,label=COL``. Images stay encoded in the Arrow table and are decoded by zoo's one
decoder, so their pixels are imagefolder's for the same files. The memory plan decides, before anything is
decoded, whether a split is decoded once into memory or read row by row in the DataLoader workers (the
loader then shards the rows across ranks as for any streamed set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zoo_core.data.dataset import InMemoryDataset
from zoo_core.data.decode import skip_or_fail, unreadable
from zoo_core.data.memory import DATA_MODES, RAM_COPIES, free_ram, plan_data_mode
from zoo_core.data.root import default_cache_dir, resolve_data_root
from zoo_core.data.stats import channel_stats
from zoo_core.errors import BadInputError, DataNotFoundError, ZooError, require_extra
from zoo_core.notices import say_once
from zoo_core.progress import track
from zoo_plugins.datasets import imagefolder_recipe
from zoo_plugins.datasets.encoded import Reading, choose_reading, decode_bytes

LABEL_NAMES = ("label", "labels", "cls", "class", "target")
SIZE_SAMPLE = 64  # images whose headers choose the size
STATS_IMAGES = 512  # images whose pixels give a streamed split's mean and std


def hf(
    *,
    root: Path | None = None,
    split: str = "train",
    download: bool = False,
    name: str | None = None,
    image: str | None = None,
    label: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    crop_pct: float | None = None,
    strict: bool = False,
    data_mode: str = "auto",
) -> InMemoryDataset | HfImages:
    """A Hugging Face data set's ``split``: at ``root`` (saved to disk or parquet files), or the hub's
    ``name`` (ORG/NAME). ``image``/``label``: the columns, when the features do not say. ``image_size``,
    ``channels``, ``crop_pct``, ``data_mode``, ``strict``: as imagefolder's."""
    require_extra("datasets", "hf", "the hf data set")
    if data_mode not in DATA_MODES:
        raise BadInputError(f"--data-mode must be one of {', '.join(DATA_MODES)}, not {data_mode!r}")
    table = open_split(root, split, name, download)
    image_col, label_col, classes = columns(table, image, label)
    from datasets import Image

    table = table.cast_column(image_col, Image(decode=False))  # bytes: zoo's decoder reads them
    where = name or str(resolve_data_root(root))
    step = max(1, len(table) // SIZE_SAMPLE)
    sample = [_bytes(table[i][image_col]) for i in range(0, len(table), step)][:SIZE_SAMPLE]
    reading = choose_reading(sample, image_size, channels, crop_pct)
    images = HfImages(table, image_col, label_col, classes, reading, where, split, strict)
    plan = plan_data_mode(
        data_mode,
        images=len(table),
        shape=(reading.channels, *reading.stored),
        free=free_ram(),
        where="free RAM",
        copies=RAM_COPIES,
        what=f"hf {where} ({split})",
        streamed="read row by row in the DataLoader workers",
    )
    if data_mode == "memory" and not plan.fits:
        raise BadInputError(f"{plan.line}, which cannot fit: --data-mode stream or auto reads it row by row")
    if plan.mode == "stream" or data_mode != "auto" or plan.need >= 1e9:
        say_once(("hf plan", where, split, plan.mode), plan.line)
    return images.in_memory() if plan.mode == "memory" else images


def open_split(root: Path | None, split: str, name: str | None, download: bool) -> Any:
    """The ``datasets.Dataset`` of ``split``: the hub's ``name``, else what ``root`` holds."""
    import datasets

    datasets.disable_progress_bars()  # zoo's own progress lines say what is read
    if name is not None:
        try:
            return datasets.load_dataset(name, split=split)
        except Exception as exc:  # offline, unknown name, no such split: one line
            raise DataNotFoundError(f"hf: cannot load {name!r} split {split!r} from the hub: {exc}") from None
    folder = resolve_data_root(root)
    if (folder / "dataset_dict.json").is_file():
        saved = datasets.load_from_disk(str(folder))
        if split not in saved:
            raise BadInputError(f"Split {split!r} not in {folder}: valid splits are {', '.join(saved)}")
        return saved[split]
    for where in (folder, folder / "data"):
        files = sorted(where.glob(f"{split}-*.parquet"))
        if files:
            cache = default_cache_dir() / "hf"
            return datasets.Dataset.from_parquet([str(f) for f in files], cache_dir=str(cache))
    fetch = " (or --dataset-arg name=ORG/NAME for the hub)" if not download else ""
    raise DataNotFoundError(
        f"No Hugging Face data set at {folder}: expected a DatasetDict saved with save_to_disk "
        f"(dataset_dict.json) or parquet files {split}-*.parquet{fetch}"
    )


def columns(table: Any, image: str | None, label: str | None) -> tuple[str, str, list[str]]:
    """(the image column, the label column, the class names) from the features or the names given."""
    from datasets import ClassLabel, Image

    features = table.features
    for given in (image, label):
        if given is not None and given not in features:
            raise BadInputError(f"hf: no column {given!r}; the columns are {', '.join(features)}")
    image = image or next((k for k, f in features.items() if isinstance(f, Image)), None)
    if image is None:
        raise BadInputError(f"hf: no Image column among {', '.join(features)}: name one with image=COL")
    label = label or next((k for k, f in features.items() if isinstance(f, ClassLabel)), None)
    label = label or next((k for k in LABEL_NAMES if k in features), None)
    if label is None:
        raise BadInputError(f"hf: no label column among {', '.join(features)}: name one with label=COL")
    feature = features[label]
    if isinstance(feature, ClassLabel):
        return image, label, list(feature.names)
    values = table.unique(label)
    if not all(isinstance(v, int) and v >= 0 for v in values):
        raise BadInputError(f"hf: the label column {label!r} must be a ClassLabel or non-negative ints")
    return image, label, [str(i) for i in range(max(values) + 1)]


def _bytes(cell: dict[str, Any]) -> bytes:
    """An undecoded Image cell's bytes (embedded, else read from its path)."""
    if cell.get("bytes") is not None:
        return cell["bytes"]
    if cell.get("path"):
        return Path(cell["path"]).read_bytes()
    return b""


class HfImages(torch.utils.data.Dataset):
    """One split of a Hugging Face data set, rows decoded on demand (``StreamedDataset``): an unreadable
    image is reported (fatal with ``strict``) and the next readable row stands in, with its label."""

    def __init__(
        self,
        table: Any,
        image_col: str,
        label_col: str,
        classes: list[str],
        reading: Reading,
        where: str,
        split: str,
        strict: bool,
    ) -> None:
        self.table, self.image_col, self.label_col = table, image_col, label_col
        self.classes, self.reading, self.where, self.split, self.strict = (
            classes,
            reading,
            where,
            split,
            strict,
        )
        self.input_size = reading.input_size
        self.crop_pct = reading.crop_pct
        self.recipe = imagefolder_recipe(len(table), large=reading.large)
        self._stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for step in range(len(self.table)):
            i = (index + step) % len(self.table)
            row = self.table[i]
            try:
                return decode_bytes(_bytes(row[self.image_col]), self._name(i), self.reading), int(
                    row[self.label_col]
                )
            except Exception as exc:  # Pillow raises many types for a damaged file
                skip_or_fail(unreadable(self._name(i), exc), self.strict)
        raise ZooError(f"None of the {len(self.table)} images of {self.where} ({self.split}) could be read")

    def _name(self, i: int) -> str:
        return f"{self.where} {self.split}[{i}]"

    @property
    def mean(self) -> tuple[float, ...]:
        return self.stats()[0]

    @property
    def std(self) -> tuple[float, ...]:
        return self.stats()[1]

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of up to STATS_IMAGES evenly spaced rows (computed once)."""
        if self._stats is None:
            step = max(1, len(self) // STATS_IMAGES)
            rows = range(0, len(self), step)[:STATS_IMAGES]
            rows = track(rows, f"channel statistics of {self.where} ({self.split})")
            self._stats = channel_stats(torch.stack([self[i][0] for i in rows]))
        return self._stats

    def in_memory(self) -> InMemoryDataset:
        """Every row decoded into uint8 N×C×H×W, with int64 labels and the split's own statistics."""
        images = torch.empty((len(self), *self.reading_shape()), dtype=torch.uint8)
        labels = torch.empty(len(self), dtype=torch.int64)
        for i in track(range(len(self)), f"decoding {self.where} ({self.split}) into memory"):
            images[i], labels[i] = self[i]
        mean, std = channel_stats(images)
        return InMemoryDataset(
            images, labels, self.classes, mean=mean, std=std, recipe=self.recipe, crop_pct=self.crop_pct
        )

    def reading_shape(self) -> tuple[int, int, int]:
        return (self.reading.channels, *self.reading.stored)
