"""The confusion matrix shown to a person: as text for the terminal and as a PNG heat map (PIL only)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

MAX_TEXT_CLASSES = 20  # beyond this a matrix no longer fits a terminal or shows legible counts per cell
MAX_LABELED_CLASSES = 100
# Endpoints and middle of the common "Blues" colour map: white for 0, dark blue for a whole row.
_BLUES = np.array([[247, 251, 255], [107, 174, 214], [8, 48, 107]], dtype=np.float64)
_INK = (33, 33, 33)


def format_confusion(confusion: Tensor, classes: Sequence[str], *, most_confused: int = 10) -> str:
    """The matrix as aligned text (rows true, columns predicted); for many classes, the top mix-ups."""
    counts = confusion.cpu().numpy()
    n = len(classes)
    if n > MAX_TEXT_CLASSES:
        off = counts.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(-off, axis=None, kind="stable")[:most_confused]
        lines = ["Most confused (true -> predicted: count):"]
        for flat in order:
            true, pred = divmod(int(flat), n)
            if off[true, pred] == 0:
                break
            lines.append(f"  {classes[true]} -> {classes[pred]}: {off[true, pred]}")
        return "\n".join(lines if len(lines) > 1 else [*lines, "  (none)"])
    # "3 cat" for named classes; just "3" where the name is the index itself (digits)
    labels = [str(i) if name == str(i) else f"{i} {_shorten(name, 16)}" for i, name in enumerate(classes)]
    label_w = max(len(label) for label in labels)
    cell_w = max(len(str(counts.max())), len(str(n - 1))) + 1
    header = " " * label_w + " " + "".join(f"{j:>{cell_w}}" for j in range(n))
    lines = ["Confusion matrix (rows: true class, columns: predicted class index)", header]
    for i, label in enumerate(labels):
        lines.append(f"{label:<{label_w}} " + "".join(f"{c:>{cell_w}}" for c in counts[i]))
    return "\n".join(lines)


def save_confusion_png(
    path: str | os.PathLike, confusion: Tensor, classes: Sequence[str], *, title: str = "Confusion matrix"
) -> Path:
    """Draw the matrix as a heat map shaded by each cell's share of its row; counts shown up to 20 classes."""
    counts = confusion.cpu().numpy().astype(np.int64)
    n = len(classes)
    cell = 48 if n <= 12 else 36 if n <= MAX_TEXT_CLASSES else max(2, 1000 // n)
    show_labels = n <= MAX_LABELED_CLASSES
    label_font = _font(13 if n <= MAX_TEXT_CLASSES else 10)
    title_font = _font(16)
    names = [_shorten(c, 20) for c in classes]
    label_w = max(_text_size(label_font, name)[0] for name in names) + 10 if show_labels else 0

    pad, axis_h = 12, 22  # outer margin; room for an axis title
    title_h = _text_size(title_font, title)[1] + 14
    grid = n * cell
    left = pad + axis_h + label_w
    top = pad + title_h + axis_h + label_w
    width = max(left + grid + pad, _text_size(title_font, title)[0] + 2 * pad)
    image = Image.new("RGB", (width, top + grid + pad), "white")
    draw = ImageDraw.Draw(image)

    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    shade = np.sqrt(fractions)  # lifts the few-percent mix-ups, the cells worth looking at, off white
    heat = _blues(shade).repeat(cell, axis=0).repeat(cell, axis=1)
    image.paste(Image.fromarray(heat, "RGB"), (left, top))

    draw.text((pad, pad), title, fill=_INK, font=title_font)
    draw.text((left + grid // 2, top - label_w - 4), "predicted", fill=_INK, font=label_font, anchor="md")
    _paste_rotated_text(image, "true", (pad, top + grid // 2), label_font)
    if show_labels:
        for i, name in enumerate(names):
            center = top + i * cell + cell // 2
            draw.text((left - 6, center), name, fill=_INK, font=label_font, anchor="rm")
        column_labels = Image.new("L", (label_w, grid), 0)
        column_draw = ImageDraw.Draw(column_labels)
        for j, name in enumerate(names):
            column_draw.text((6, j * cell + cell // 2), name, fill=255, font=label_font, anchor="lm")
        # Rotated a quarter turn counter-clockwise: names read upwards and end just above their column.
        rotated = column_labels.transpose(Image.Transpose.ROTATE_90)
        image.paste(Image.new("RGB", rotated.size, _INK), (left, top - label_w), rotated)
    if n <= MAX_TEXT_CLASSES:
        count_font = _font(max(9, min(14, cell // 3)))
        for i in range(n):
            for j in range(n):
                ink = "white" if shade[i, j] > 0.6 else _INK
                center = (left + j * cell + cell // 2, top + i * cell + cell // 2)
                draw.text(center, str(counts[i, j]), fill=ink, font=count_font, anchor="mm")
        for edge in range(n + 1):  # thin grid lines keep the cells apart where colours are close
            draw.line([(left + edge * cell, top), (left + edge * cell, top + grid)], fill=(210, 210, 210))
            draw.line([(left, top + edge * cell), (left + grid, top + edge * cell)], fill=(210, 210, 210))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def _blues(fractions: np.ndarray) -> np.ndarray:
    """Map fractions in [0, 1] to uint8 RGB along the two segments of the colour map."""
    f = np.clip(fractions, 0.0, 1.0)[..., None] * 2
    low = _BLUES[0] + (_BLUES[1] - _BLUES[0]) * np.minimum(f, 1.0)
    high = _BLUES[1] + (_BLUES[2] - _BLUES[1]) * np.maximum(f - 1.0, 0.0)
    return np.where(f <= 1.0, low, high).round().astype(np.uint8)


def _paste_rotated_text(
    image: Image.Image, text: str, left_middle: tuple[int, int], font: ImageFont.ImageFont
) -> None:
    w, h = _text_size(font, text)
    mask = Image.new("L", (w + 4, h + 6), 0)
    ImageDraw.Draw(mask).text((2, 2), text, fill=255, font=font)
    mask = mask.transpose(Image.Transpose.ROTATE_90)
    x, y = left_middle
    image.paste(Image.new("RGB", mask.size, _INK), (x, y - mask.size[1] // 2), mask)


def _font(size: int) -> ImageFont.ImageFont:
    # Pillow ≥ 10.1 bundles a scalable font; without FreeType this falls back to the fixed bitmap font.
    return ImageFont.load_default(size=size)


def _text_size(font: ImageFont.ImageFont, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom - top)


def _shorten(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
