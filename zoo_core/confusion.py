"""The confusion matrix shown to a person: as text for the terminal and as a PNG heat map (matplotlib).

matplotlib is optional (``pip install 'zoo-models[plot]'``) and imported only to draw; without it the PNG
is skipped with a warning and the text view still works.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

MAX_TEXT_CLASSES = 20  # beyond this a matrix no longer fits a terminal or shows legible counts per cell
MAX_LABELED_CLASSES = 100


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
) -> Path | None:
    """Draw the matrix as a heat map shaded by each cell's share of its row (counts written in the cells up
    to 20 classes, class names up to 100) and save it as an RGB PNG. Returns the path, or None (with a
    warning on stderr) where matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        print(
            "zoo: warning: no confusion-matrix PNG: matplotlib is not installed "
            "(pip install 'zoo-models[plot]')",
            file=sys.stderr,
        )
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    counts = confusion.cpu().numpy().astype(np.int64)
    n = len(classes)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    shade = np.sqrt(fractions)  # lifts the few-percent mix-ups, the cells worth looking at, off white

    side = min(12.0, max(4.0, 0.5 * n + 2.0)) if n <= MAX_TEXT_CLASSES else 10.0
    figure = Figure(figsize=(side + 1.2, side), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shade, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=axes, shrink=0.8, ticks=np.sqrt([0, 0.05, 0.25, 0.5, 1.0]))
    colorbar.ax.set_yticklabels(["0", "5%", "25%", "50%", "100%"])
    colorbar.set_label("share of the true class (square-root scale)")
    axes.set_title(title, fontsize="medium")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if n <= MAX_LABELED_CLASSES:
        names = [_shorten(c, 20) for c in classes]
        fontsize = 9 if n <= MAX_TEXT_CLASSES else 5
        axes.set_xticks(range(n), names, rotation=90, fontsize=fontsize)
        axes.set_yticks(range(n), names, fontsize=fontsize)
    else:
        axes.set_xticks([])
        axes.set_yticks([])
    if n <= MAX_TEXT_CLASSES:
        fontsize = 10 if n <= 12 else 7
        for i in range(n):
            for j in range(n):
                colour = "white" if shade[i, j] > 0.6 else "#212121"
                axes.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=fontsize)
        axes.set_xticks(np.arange(n + 1) - 0.5, minor=True)
        axes.set_yticks(np.arange(n + 1) - 0.5, minor=True)
        axes.grid(which="minor", color="#d2d2d2", linewidth=0.5)
        axes.tick_params(which="minor", length=0)
    figure.canvas.draw()
    rgb = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="PNG", optimize=True)
    return path


def _shorten(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
