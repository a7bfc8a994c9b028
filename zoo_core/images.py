"""Image files from the user, read into model input: any format, size and mode PIL opens."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from zoo_core.errors import BadInputError


def read_image(path: str | os.PathLike, input_size: Sequence[int], crop_pct: float = 1.0) -> torch.Tensor:
    """One image file as a uint8 C×H×W tensor: upright, ``input_size``'s channels (L or RGB) and size.

    With ``crop_pct`` 1 the whole picture is resized to H×W (no crop, so nothing at its edges is lost);
    below 1 it is the evaluation transform of a model trained ImageNet-style (the model card's crop_pct):
    the shorter side resized to H / crop_pct, then the centre H×W. Transparent parts are laid on white, the
    way a viewer shows them; 16-bit and float images are scaled to 8 bits.
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
    if crop_pct < 1:  # the same pixels as training's evaluation view: stored size, then the centre crop
        from zoo_core.data.dataset import stored_size

        stored = stored_size((height, width), crop_pct)
        image = image.resize(
            (stored[1], stored[0]), Image.Resampling.BILINEAR, box=centre_box(image.size, stored)
        )
        top, left = round((stored[0] - height) / 2), round((stored[1] - width) / 2)
        image = image.crop((left, top, left + width, top + height))
    else:
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8).reshape(height, width, channels)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()


def centre_box(image: tuple[int, int], size: Sequence[int]) -> tuple[float, float, float, float]:
    """The centre region (left, top, right, bottom) of an ``image`` = (W, H) picture that has the aspect
    ratio of ``size`` = (H, W): all of its height or all of its width (Resize of the shorter side, then
    CenterCrop, as one box for Pillow's ``resize(box=…)``)."""
    w, h = image
    aspect = size[1] / size[0]
    if w / h > aspect:  # wider: keep the height
        kept = h * aspect
        return ((w - kept) / 2, 0.0, (w + kept) / 2, float(h))
    kept = w / aspect
    return (0.0, (h - kept) / 2, float(w), (h + kept) / 2)


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
