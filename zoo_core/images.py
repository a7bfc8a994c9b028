"""Image files from the user, read into model input: any format, size and mode PIL opens."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from zoo_core.errors import BadInputError


def read_image(path: str | os.PathLike, input_size: Sequence[int]) -> torch.Tensor:
    """One image file as a uint8 C×H×W tensor: upright, ``input_size``'s channels (L or RGB) and size.

    The whole picture is resized to H×W (no crop, so nothing at its edges is lost). Transparent parts
    are laid on white, the way a viewer shows them; 16-bit and float images are scaled to 8 bits.
    """
    channels, height, width = (int(n) for n in input_size)
    if channels not in (1, 3):
        raise BadInputError(f"Cannot read images for a model with {channels} input channels (1 or 3 only)")
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"No such image file: {path}")
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)  # phone photos store their rotation apart from pixels
            image.load()
    except Exception as err:  # decoders raise many types (OSError, SyntaxError, struct.error...) on bad data
        reason = " ".join(str(err).split()) or type(err).__name__
        raise BadInputError(f"Cannot read image {path}: {reason}") from err
    image = _to_mode(image, "L" if channels == 1 else "RGB")
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8).reshape(height, width, channels)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()


def read_images(
    paths: Sequence[str | os.PathLike],
    *,
    input_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Image files as one normalized float batch N×C×H×W on ``device``, ready for the model."""
    batch = torch.stack([read_image(path, input_size) for path in paths]).to(device)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
    return (batch.float() / 255 - mean_t) / std_t


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode.startswith("I") or image.mode == "F":
        # Deep grey images: scale their range to 8 bits rather than clip everything above 255 to white.
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or (image.mode == "I" and values.max() > 255):
            top = 65535.0
        elif image.mode == "F" and values.max() <= 1.0:
            top = 1.0
        else:
            top = 255.0
        grey = np.clip(values / top * 255.0, 0, 255).round().astype(np.uint8)
        image = Image.fromarray(grey, "L")
    if image.mode == "P":
        image = image.convert("RGBA")  # palette transparency becomes an alpha channel
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert(mode)
