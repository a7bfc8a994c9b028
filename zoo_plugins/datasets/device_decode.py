"""JPEG decoding on the training device: DataLoader workers only read files, and the loader decodes each
batch at once with ``torchvision.io.decode_jpeg(..., device=...)`` (nvJPEG on a GPU), then resizes every
image to the stored size there.

A worker sends a JPEG's bytes as they are (a 1-D uint8 tensor) and decodes anything else itself (PNG, BMP:
a C×H×W uint8 tensor at the stored size, as the worker path does). On the device each picture is cut to the
stored aspect (its centre, as ``decode_image`` with ``keep_aspect``) and resized by the one resize rule
(``ops.resize_region``, bilinear with antialiasing, which the workers' decoder uses too; on a GPU in
float32, rounded to uint8). Workers send only the JPEGs that the decoder's own fast path reads with the
same libjpeg calls, upright ones, so the device's pixels are the workers' within one level. Whether this
beats decoding in the workers depends on the GPU, the CPU cores and the photos: benchmarks/
imagefolder_stream.py ``--decode-on-device`` measures it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from zoo_core.data.ops import centre_box, resize_region


def decode_batch(
    items: Sequence[torch.Tensor],
    device: torch.device,
    size: tuple[int, int],
    channels: int,
    keep_aspect: bool,
) -> tuple[torch.Tensor, list[int]]:
    """uint8 N×C×H×W on ``device`` at ``size`` from workers' items (JPEG bytes or decoded images), and the
    positions whose JPEG did not decode (their slots hold zeros; the caller substitutes or fails)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    out = torch.empty(len(items), channels, *size, dtype=torch.uint8, device=device)
    jpegs = [k for k, item in enumerate(items) if item.dim() == 1]
    failed: list[int] = []
    for k, item in enumerate(items):
        if item.dim() == 3:
            out[k].copy_(item, non_blocking=True)
    if jpegs:
        data = [items[k] for k in jpegs]
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for TorchCodec's
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                pictures = decode_jpeg(data, mode=mode, device=device)
            except Exception:  # one damaged file fails the whole call: decode them one by one to find it
                pictures = []
                for one in data:
                    try:
                        pictures.append(decode_jpeg(one, mode=mode, device=device))
                    except Exception:  # nvJPEG and libjpeg raise differently; either way it is unreadable
                        pictures.append(None)
        for k, picture in zip(jpegs, pictures, strict=True):
            if picture is None:
                failed.append(k)
                out[k].zero_()
            else:
                out[k].copy_(fit(picture, size, keep_aspect))
    return out, failed


def fit(picture: torch.Tensor, size: tuple[int, int], keep_aspect: bool) -> torch.Tensor:
    """One decoded C×H×W uint8 picture at ``size``: its centre region of that aspect (``keep_aspect``) or
    the whole picture, resized by the one resize rule (``ops.resize_region``)."""
    h, w = picture.shape[-2:]
    return resize_region(picture, centre_box((w, h), size) if keep_aspect else (0, 0, w, h), size)
