"""What the data sets of encoded images (``hf`` rows, ``wds`` tar members) share with imagefolder: the size
the images are read at, chosen as imagefolder chooses it, and one image's bytes decoded by zoo's one decoder
(``zoo_core.data.decode``) into a uint8 C×H×W tensor, so the pixels are the same whichever source holds
the file."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from zoo_core.data.dataset import cropped_size, stored_size
from zoo_core.data.decode import GRAY_MODES, decode_image
from zoo_core.errors import BadInputError
from zoo_plugins.datasets.imagefolder import CROP_PCT, LARGE_SIDE
from zoo_plugins.datasets.imagefolder_tree import AUTO_SIZE_CAP, size_pair


@dataclass(frozen=True)
class Reading:
    """How a split's images are read: stored at ``stored`` (H, W) in ``channels``, the whole picture or
    (``keep_aspect``) its centre region; the model sees the centre ``crop_pct`` (``input_size``)."""

    stored: tuple[int, int]
    channels: int
    crop_pct: float
    keep_aspect: bool
    large: bool

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (self.channels, *cropped_size(self.stored, self.crop_pct))


def choose_reading(
    sample: Iterable[bytes],
    image_size: int | Sequence[int] | None,
    channels: int | None,
    crop_pct: float | None,
) -> Reading:
    """The ``Reading`` of a split from a sample of its encoded images: ``image_size`` (N or (H, W)) or,
    without it, the sample's one size, or their median size with its shorter side at most AUTO_SIZE_CAP;
    large images (shorter side ≥ LARGE_SIDE) are stored at size / crop_pct, ImageNet-style, as imagefolder
    stores them. ``channels`` 1 or 3, by default 1 only when every sampled image is grey."""
    from PIL import Image

    if channels not in (None, 1, 3):
        raise BadInputError(f"channels must be 1 or 3, not {channels}")
    if crop_pct is not None and not (isinstance(crop_pct, int | float) and 0 < crop_pct <= 1):
        raise BadInputError(f"crop_pct must be a number in (0, 1], not {crop_pct!r}")
    sizes, grey = [], True
    for data in sample:
        try:
            with Image.open(io.BytesIO(data)) as img:
                sizes.append((img.height, img.width))
                grey = grey and img.mode in GRAY_MODES
        except Exception:  # unreadable: reported when it is decoded
            continue
    size = size_pair(image_size)
    if size is None and sizes:
        heights, widths = zip(*sizes, strict=True)
        size = (int(np.median(heights)), int(np.median(widths)))
        if len(set(sizes)) > 1:
            scale = min(1.0, AUTO_SIZE_CAP / min(size))
            size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    if size is None:
        raise BadInputError("None of the sampled images could be read to choose a size: pass --image-size")
    large = min(size) >= LARGE_SIDE
    crop = float(crop_pct if crop_pct is not None else (CROP_PCT if large else 1.0))
    stored = stored_size(size, crop) if crop < 1 else size
    return Reading(stored, channels or (1 if grey and sizes else 3), crop, crop < 1, large)


def decode_bytes(data: bytes, name: str, reading: Reading) -> torch.Tensor:
    """One encoded image (``name`` for errors) as a uint8 C×H×W tensor at the stored size; raises as the
    one decoder raises when it does not decode."""
    array = decode_image(name, reading.stored, reading.channels, reading.keep_aspect, data=data)
    image = torch.from_numpy(array if array.flags.writeable else np.array(array))
    return image[None] if image.dim() == 2 else image.permute(2, 0, 1)
