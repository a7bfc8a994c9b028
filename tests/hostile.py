"""The hostile-image set: one small file of every kind a user's folder may hold, each beside the picture a
viewer shows for it (H×W×3 uint8), so a reader's pixels can be compared with what a person sees.

The upright picture is four flat quadrants (red, green / blue, yellow) of 48×64, aligned to JPEG's 8×8
blocks: every one of the eight EXIF orientations turns it into a different picture, and a JPEG keeps
flat blocks within a few levels.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE, YELLOW, WHITE = (220, 30, 30), (30, 200, 40), (40, 40, 210), (230, 220, 40), (255, 255, 255)
LOSSY = {"exif", "cmyk", "progressive"}  # file kinds whose pixels are JPEG's: compared within a few levels
DAMAGED = ("truncated.jpg", "empty.png", "not-an-image.png")


def upright(height: int = 48, width: int = 64) -> np.ndarray:
    """The picture a viewer shows: four flat quadrants, red green / blue yellow."""
    out = np.empty((height, width, 3), dtype=np.uint8)
    h, w = height // 2, width // 2
    out[:h, :w], out[:h, w:], out[h:, :w], out[h:, w:] = RED, GREEN, BLUE, YELLOW
    return out


# what is stored for EXIF orientation k, so that a viewer turning it by k shows the upright picture
_STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),  # the viewer turns it 90° clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),  # the viewer turns it 90° counter-clockwise
}


def exif_jpeg(picture: np.ndarray, orientation: int, **options: object) -> bytes:
    """``picture`` stored as a JPEG that a viewer shows upright by its EXIF ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored = np.ascontiguousarray(_STORED[orientation](picture))
    Image.fromarray(stored).save(buffer, "JPEG", quality=95, exif=exif.tobytes(), **options)
    return buffer.getvalue()


def cut_out(picture: np.ndarray, hidden: tuple[int, int, int]) -> np.ndarray:
    """RGBA: ``picture`` with its lower half transparent, hidden pixels ``hidden`` (a viewer shows white)."""
    rgba = np.concatenate([picture, np.full((*picture.shape[:2], 1), 255, np.uint8)], axis=2)
    rgba[picture.shape[0] // 2 :] = (*hidden, 0)
    return rgba


def write_hostile_set(folder: Path) -> dict[str, np.ndarray]:
    """Write every kind of file into ``folder``; {file name: the picture a viewer shows}. The damaged
    files (``DAMAGED``) are written too, with no picture."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = upright()
    seen: dict[str, np.ndarray] = {}
    for k in range(1, 9):
        (folder / f"exif{k}.jpg").write_bytes(exif_jpeg(picture, k))
        seen[f"exif{k}.jpg"] = picture
    (folder / "progressive.jpg").write_bytes(exif_jpeg(picture, 1, progressive=True))
    seen["progressive.jpg"] = picture
    Image.fromarray(picture).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    seen["cmyk.jpg"] = picture

    shown = picture.copy()
    shown[24:] = WHITE
    Image.fromarray(cut_out(picture, (0, 255, 0)), "RGBA").save(folder / "rgba.png")
    seen["rgba.png"] = shown
    grey = np.asarray(Image.fromarray(picture).convert("L"))
    la = np.stack([grey, np.where(np.arange(48)[:, None] < 24, 255, 0).repeat(64, 1).astype(np.uint8)], 2)
    la[24:, :, 0] = 0  # hidden black
    Image.fromarray(la, "LA").save(folder / "la.png")
    seen["la.png"] = np.repeat(np.where(np.arange(48)[:, None] < 24, grey, 255)[..., None], 3, 2).astype(
        np.uint8
    )
    palette = Image.fromarray(picture).quantize(colors=4, dither=Image.Dither.NONE)
    indices = np.array(palette)
    indices[24:] = 4  # a fifth entry: transparent, its colour magenta
    flat = [*palette.getpalette()[:12], 255, 0, 255]
    transparent = Image.fromarray(indices, "P")
    transparent.putpalette(flat)
    transparent.save(folder / "palette.png", transparency=4)
    seen["palette.png"] = shown

    levels = (np.arange(48 * 64).reshape(48, 64) % 256).astype(np.uint8)
    grey3 = np.repeat(levels[..., None], 3, 2)
    Image.fromarray(levels.astype(np.uint16) * 257).save(folder / "deep16.png")  # I;16
    seen["deep16.png"] = grey3
    Image.fromarray(levels.astype(np.float32) / 255, "F").save(folder / "float.tif")
    seen["float.tif"] = grey3
    Image.fromarray(levels, "L").save(folder / "grey.png")
    seen["grey.png"] = grey3
    bits = (levels > 127).astype(np.uint8) * 255
    Image.fromarray(bits).convert("1").save(folder / "onebit.png")
    seen["onebit.png"] = np.repeat(bits[..., None], 3, 2)
    second = Image.fromarray(np.full_like(picture, 90))
    Image.fromarray(picture).save(
        folder / "animated.gif", save_all=True, append_images=[second], duration=100
    )
    seen["animated.gif"] = picture

    whole = exif_jpeg(picture, 1)
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "not-an-image.png").write_bytes(b"hello, this is text")
    return seen


def kind(name: str) -> str:
    """The kind of a hostile file: its name without digits or extension (exif3.jpg → exif)."""
    return name.split(".")[0].rstrip("0123456789")
