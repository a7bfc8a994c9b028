"""JPEG files decoded by torchvision's libjpeg-turbo binding and resized by torch's uint8 kernels.

Pillow decodes a 300–500 px photo in about 1.2 ms on a 2-core Xeon; ``torchvision.io.decode_jpeg`` does it
in 0.6 ms, and torch's antialiased bilinear resize of uint8 channels_last images (the fast path it has for
exactly this) takes 0.3 ms, about Pillow's cost (benchmarks/results/imagefolder-stream-cpu.md). Pillow
stays in charge wherever this does not apply: other formats, JPEGs whose draft mode (a DCT-domain
reduction by 2, 4 or 8) shrinks them more cheaply, files torchvision cannot decode (its error is not
reported here: Pillow then decodes the file or says what is wrong with it), and torchvision releases
without image decoding (0.29 deprecates it in favour of TorchCodec).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

# start-of-frame markers (baseline, progressive, lossless, arithmetic): not DHT (C4), JPG (C8), DAC (CC)
_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # markers without a length


def is_jpeg(data: bytes) -> bool:
    """Whether a file's bytes start as a JPEG's do (whatever its name says)."""
    return data[:3] == b"\xff\xd8\xff"


def jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG's start-of-frame segment, or None for anything else or a
    header this walk does not follow (the caller then asks Pillow). Pillow's own header reading costs a
    tenth of the decoding here (0.06 of 0.62 ms a photo); the walk over the segments, a few µs."""
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


def decode_resized(
    data: bytes, gray: bool, region: Sequence[float], size: tuple[int, int]
) -> np.ndarray | None:
    """The JPEG file ``data`` as uint8 H×W (``gray``) or H×W×3, its ``region`` (left, top, right, bottom in
    pixels, rounded to whole ones) resized to ``size`` = (H, W) bilinearly with antialiasing; None where
    torchvision cannot do it (the caller then uses Pillow)."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:
        return None
    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            picture = decode_jpeg(encoded, mode=ImageReadMode.GRAY if gray else ImageReadMode.RGB)
    except (RuntimeError, ValueError):
        return None
    # H×W×C: torch's resize hands back C×H×W, and torch reorders it twice as fast as numpy would
    pixels = resize_region(picture, region, size).permute(1, 2, 0).contiguous()
    return (pixels[..., 0] if gray else pixels).numpy()


def resize_region(picture: torch.Tensor, region: Sequence[float], size: tuple[int, int]) -> torch.Tensor:
    """A decoded C×H×W uint8 picture's ``region`` (left, top, right, bottom in pixels, rounded to whole
    ones and kept inside it) resized to ``size`` = (H, W) bilinearly with antialiasing, as C×H×W uint8: on a
    CPU by torch's uint8 channels_last kernel (its fast path), elsewhere in float32, rounded."""
    h, w = picture.shape[-2:]
    left, top, right, bottom = (round(v) for v in region)
    left, top = min(max(left, 0), w - 1), min(max(top, 0), h - 1)
    right, bottom = min(max(right, left + 1), w), min(max(bottom, top + 1), h)
    window = picture[None, :, top:bottom, left:right]
    if tuple(window.shape[-2:]) == tuple(size):
        return window[0]
    if picture.device.type == "cpu":
        window = window.contiguous(memory_format=torch.channels_last)
        return torch.nn.functional.interpolate(
            window, size, mode="bilinear", antialias=True, align_corners=False
        )[0]
    resized = torch.nn.functional.interpolate(
        window.float(), size, mode="bilinear", antialias=True, align_corners=False
    )
    return resized[0].round_().clamp_(0, 255).to(torch.uint8)


def one_thread() -> None:
    """A decoding process's initializer: torch on one thread. A forked child that enters a parallel region
    of the OpenMP pool its parent started hangs (GNU OpenMP is not fork-safe); DataLoader workers do the
    same."""
    torch.set_num_threads(1)
