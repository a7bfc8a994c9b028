"""The chart of an accuracy benchmark: test accuracy against training time, one curve per model.

matplotlib is an optional dependency (``pip install 'zoo-models[plot]'``), imported only here, only when
a chart is drawn; the figure is drawn without pyplot, so no GUI backend and no global state are involved.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from zoo_core.errors import BadInputError, ZooError

_MARKERS = "os^Dv<>pPhX*"


def require_matplotlib(option: str = "--plot") -> None:
    """Fail early (exit 2) where matplotlib is missing, rather than after a long run."""
    if importlib.util.find_spec("matplotlib") is None:
        raise BadInputError(f"{option} needs matplotlib: pip install 'zoo-models[plot]'")


def plot_accuracy(rows: list[dict[str, Any]], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Write a PNG of test top-1 (%) against training wall time for each accuracy row with a curve: one
    line with a marker per epoch (a single point for a one-epoch run). The time axis is logarithmic where
    the models' times differ by more than 20×. Models without a finished epoch are left out."""
    require_matplotlib()
    import matplotlib
    from matplotlib.figure import Figure

    curves = [(row["model"], row.get("curve") or []) for row in rows]
    curves = [(name, curve) for name, curve in curves if curve]
    if not curves:
        raise ZooError("No model finished an epoch: there is nothing to plot")
    figure = Figure(figsize=(8, 4.8), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    times = []
    for i, (name, curve) in enumerate(curves):
        curve = [point for point in curve if point["val_acc"] is not None]  # evaluated epochs only
        x = [point["time_s"] for point in curve]
        y = [point["val_acc"] * 100 for point in curve]
        times += x
        # tab20 past ten curves: the default cycle's ten colours would repeat
        color = f"C{i}" if len(curves) <= 10 else matplotlib.colormaps["tab20"](i % 20)
        axes.plot(
            x, y, marker=_MARKERS[i % len(_MARKERS)], color=color, markersize=4, linewidth=1.2, label=name
        )
        if len(curves) <= 8:  # beyond that, labels on the chart overlap: the legend alone names them
            axes.annotate(
                name, (x[-1], y[-1]), xytext=(4, 0), textcoords="offset points", fontsize=7, va="center"
            )
    if min(times) > 0 and max(times) / min(times) > 20:
        axes.set_xscale("log")
    axes.set_xlabel("training time (wall seconds since the start of training)")
    axes.set_ylabel("test top-1 accuracy (%)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", frameon=False)
    if title:
        axes.set_title(title, fontsize="medium")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    figure.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path
