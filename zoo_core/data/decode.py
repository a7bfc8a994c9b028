"""The one decoder: an image file's bytes → uint8 pixels as a viewer shows them, for every reader of an
image file (training in memory and streamed, in DataLoader workers or on the device, ``zoo eval``,
``zoo predict``, the benchmarks).

The picture is made upright by its EXIF orientation (1–8), transparency (RGBA, LA, a palette with a
transparent entry) is laid on white, 16-bit and float images are scaled to 8 bits, CMYK/YCCK, grey and
1-bit images are converted, and an animation gives its first frame. It comes out in the requested
channels (1: grey, 3: RGB; None: grey when the file is) and, with ``size``, resized by the one resize rule
(``ops.resize_region``: bilinear, antialiased) — the whole picture squashed to ``size``, or with
``keep_aspect`` its centre region of that aspect (``ops.centre_box``).

Pillow is the reference path. The fast path, torchvision's libjpeg-turbo binding (``decode_jpeg``) for
complete baseline and progressive colour or grey JPEGs, gives its pixels within one level, tested per kind
of file (tests/test_decode.py). JPEG draft mode (libjpeg's DCT-domain shrinking by 2, 4 or 8) is not used:
its pixels are several levels off an antialiased resize of the full picture, whatever margin it is given.
A file that does not decode is reported in one line by ``unreadable``, the same line everywhere.
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from zoo_core.data.ops import centre_box, resize_region
from zoo_core.errors import BadInputError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

# Pillow modes whose pictures are grey: with channels=None these decode to one channel
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
# start-of-frame markers (baseline, progressive, lossless, arithmetic): not DHT (C4), JPG (C8), DAC (CC)
_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # markers without a length
_ORIENTATION = 0x0112  # the EXIF tag


class UnreadableImageError(BadInputError):
    """An image file that does not decode (damaged, truncated, empty or not an image): exit 2."""


def unreadable(path: str | Path, exc: BaseException) -> str:
    """The one-line report of a file that did not decode: ``path (Type: message)``."""
    reason = " ".join(str(exc).split())
    return f"{path} ({type(exc).__name__}: {reason})" if reason else f"{path} ({type(exc).__name__})"


def skip_or_fail(reason: str, strict: bool) -> None:
    """The one report of a training image that did not decode (``reason``: ``unreadable``'s line): fatal
    under ``strict`` (exit 2), else a warning line on stderr naming it; the caller skips the file."""
    if strict:
        raise UnreadableImageError(
            f"Cannot read image {reason} (without --strict, unreadable images are skipped)"
        )
    print(f"zoo: warning: skipped unreadable image {reason}", file=sys.stderr, flush=True)


def decode_image(
    path: str | Path,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    keep_aspect: bool = False,
    data: bytes | None = None,
) -> np.ndarray:
    """One image file as uint8 H×W (grey) or H×W×3 (colour), as a viewer shows it (module docstring),
    resized to ``size`` = (H, W) when given: the whole picture, or with ``keep_aspect`` its centre region
    of the aspect of ``size`` (torchvision's Resize of the shorter side then CenterCrop, in one
    resampling). ``data``: the file's bytes, when the caller has read them (``path`` then names the file
    in errors). Any failure raises (Pillow raises many types); ``unreadable`` words it."""
    if data is None:
        data = Path(path).read_bytes()
    fast = _decode_jpeg_fast(data, channels, size, keep_aspect)
    if fast is not None:
        return fast
    return decode_reference(data, size, channels, keep_aspect)


def decode_reference(
    data: bytes,
    size: tuple[int, int] | None,
    channels: int | None,
    keep_aspect: bool = False,
) -> np.ndarray:
    """``decode_image`` by Pillow alone: the reference path."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UnidentifiedImageError("the file is empty")
    try:
        opened = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # its own message names a BytesIO object
        raise UnidentifiedImageError("not an image format Pillow reads") from None
    with opened as img:
        gray = channels == 1 or (channels is None and img.mode in GRAY_MODES)
        orientation = img.getexif().get(_ORIENTATION, 1)
        img.load()  # a damaged or truncated file fails here, not later
        if orientation in range(2, 9):
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
        pixels = viewable(img, "L" if gray else "RGB")
    if size is None:
        return pixels
    return _fit(
        torch.from_numpy(pixels.copy()).view(*pixels.shape[:2], -1).permute(2, 0, 1), size, keep_aspect
    )


def viewable(img: PILImage, mode: str) -> np.ndarray:
    """A loaded, upright Pillow image in ``mode`` ("L" or "RGB") as a viewer shows it: the first frame,
    transparency laid on white, deep grey (16-bit, 32-bit, float) scaled to 8 bits, uint8 H×W or H×W×3."""
    from PIL import Image

    if img.mode.startswith("I") or img.mode == "F":
        # deep grey: scale its range to 8 bits rather than clip everything above 255 to white
        values = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or (img.mode == "I" and values.max() > 255):
            top = 65535.0
        elif img.mode == "F" and values.max() <= 1.0:
            top = 1.0
        else:
            top = 255.0
        img = Image.fromarray(np.clip(values / top * 255.0, 0, 255).round().astype(np.uint8), "L")
    if img.mode == "P":  # a transparent palette entry becomes an alpha channel
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in _ALPHA_MODES or (img.mode in ("L", "RGB") and "transparency" in img.info):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return np.asarray(img if img.mode == mode else img.convert(mode))


def _decode_jpeg_fast(
    data: bytes, channels: int | None, size: tuple[int, int] | None, keep_aspect: bool
) -> np.ndarray | None:
    """``decode_image`` of a complete baseline or progressive colour or grey JPEG by torchvision's decoder
    (upright by its EXIF orientation) and the one resize; None where it does not apply (the caller then
    uses Pillow): another format, CMYK, a file cut short (Pillow reports it), or a torchvision without
    image decoding."""
    header = fast_jpeg_header(data)
    if header is None:
        return None
    gray = channels == 1 or (channels is None and header[2] == 1)
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:
        return None
    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    try:
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for TorchCodec's
            warnings.simplefilter("ignore")
            mode = ImageReadMode.GRAY if gray else ImageReadMode.RGB
            picture = decode_jpeg(encoded, mode=mode, apply_exif_orientation=True)
    except (RuntimeError, ValueError):
        return None
    return _fit(picture, size, keep_aspect)


def _fit(picture: torch.Tensor, size: tuple[int, int] | None, keep_aspect: bool) -> np.ndarray:
    """A decoded C×H×W uint8 picture at ``size`` by the one resize rule, as H×W (grey) or H×W×C."""
    if size is not None:
        region = _region((picture.shape[-1], picture.shape[-2]), size, keep_aspect)
        picture = resize_region(picture, region, size)
    # H×W×C, torch reorders it twice as fast as numpy would
    pixels = picture.permute(1, 2, 0).contiguous()
    return (pixels[..., 0] if pixels.shape[-1] == 1 else pixels).numpy()


def fast_jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) of a JPEG that torchvision's decoder reads as Pillow does: complete
    (it ends with the end-of-image marker: libjpeg would fill a truncated one with grey) and grey or
    YCbCr (1 or 3 components; CMYK and YCCK go to Pillow, which knows Adobe's inverted CMYK). None else."""
    header = jpeg_header(data)
    if header is None or header[2] not in (1, 3) or not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None
    return header


def is_jpeg(data: bytes) -> bool:
    """Whether a file's bytes start as a JPEG's do (whatever its name says)."""
    return data[:3] == b"\xff\xd8\xff"


def jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG's start-of-frame segment, or None for anything else or a
    header this walk does not follow (the caller then asks Pillow). A walk over the segments reads it
    without the cost of Pillow opening the file."""
    if not is_jpeg(data):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _FRAMES:
            if at + 10 > len(data):
                return None
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            components = data[at + 9]
            return (width, height, components) if width and height and components else None
        at += 2 + length
    return None


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1–8) of an image file's bytes, 1 when it has none (Pillow reads the header)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return int(img.getexif().get(_ORIENTATION, 1))
    except Exception:  # unreadable: the decoder reports it
        return 1


def picture_size(path: str | Path) -> tuple[int, int]:
    """(W, H) of an image file as a viewer shows it (turned by its EXIF orientation), from its header."""
    from PIL import Image

    with Image.open(path) as img:
        turned = img.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8)
        return (img.height, img.width) if turned else (img.width, img.height)


def _region(picture: tuple[int, int], size: tuple[int, int], keep_aspect: bool) -> tuple[float, ...]:
    """The part (left, top, right, bottom) of a (W, H) picture that becomes the ``size`` image."""
    return centre_box(picture, size) if keep_aspect else (0.0, 0.0, float(picture[0]), float(picture[1]))


def one_thread() -> None:
    """A decoding process's initializer: torch on one thread. A forked child that enters a parallel region
    of the OpenMP pool its parent started hangs (GNU OpenMP is not fork-safe); DataLoader workers do the
    same."""
    torch.set_num_threads(1)
