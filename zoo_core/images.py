"""Image files from the user, read into model input by the one decoder (``zoo_core.data.decode``): any
format, size and mode PIL opens, the same pixels ``zoo eval`` and training see."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from zoo_core.data.decode import UnreadableImageError, decode_image, unreadable
from zoo_core.data.ops import center_crop, centre_box, normalize
from zoo_core.errors import BadInputError

__all__ = ["centre_box", "read_image", "read_images"]


def read_image(path: str | os.PathLike, input_size: Sequence[int], crop_pct: float = 1.0) -> torch.Tensor:
    """One image file as a uint8 C×H×W tensor: ``input_size``'s channels (L or RGB) and size, exactly the
    pixels of ``zoo eval``'s view of it.

    With ``crop_pct`` 1 the whole picture is resized to H×W (no crop, so nothing at its edges is lost);
    below 1 it is the evaluation view of a model trained ImageNet-style (the model card's crop_pct): stored
    as training stores it (shorter side to H / crop_pct, the centre of that aspect), then the centre H×W.
    Upright, transparency on white, deep images scaled to 8 bits: see ``zoo_core.data.decode``.
    """
    from zoo_core.data.dataset import stored_size

    channels, height, width = (int(n) for n in input_size)
    if channels not in (1, 3):
        raise BadInputError(f"Cannot read images for a model with {channels} input channels (1 or 3 only)")
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"No such image file: {path}")
    size = (height, width)
    crop = crop_pct < 1
    try:
        pixels = decode_image(path, stored_size(size, crop_pct) if crop else size, channels, keep_aspect=crop)
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, struct.error...) on bad data
        raise UnreadableImageError(f"Cannot read image {unreadable(path, exc)}") from exc
    image = torch.from_numpy(pixels.copy()).view(pixels.shape[0], pixels.shape[1], channels)
    return center_crop(image.permute(2, 0, 1)[None], size)[0].contiguous()


def read_images(
    paths: Sequence[str | os.PathLike],
    *,
    input_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    device: str | torch.device = "cpu",
    crop_pct: float = 1.0,
) -> torch.Tensor:
    """Image files as one normalized float batch N×C×H×W on ``device``, ready for the model."""
    batch = torch.stack([read_image(path, input_size, crop_pct) for path in paths]).to(device)
    return normalize(batch, mean, std)
