"""Drawing the resize figure (matplotlib, the ``viz`` extra): output samples on the input grid.

Each panel draws the input pixels (squares with their values, centres on the integer
grid) and the source point of every output pixel under one convention; samples outside
the image are read from the border pixel.  Artists carry gids ("samples",
"samples-other", "picks", "picks-other") so the drawn coordinates can be read back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jax_roialign.tools.plot.figure import _agg_figure, _draw_map, png_path
from jax_roialign.tools.plot.resize_scene import ResizePanel, input_map, resize_panels

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _grid(coords: np.ndarray) -> np.ndarray:
    """(m * m, 2) (x, y) points: every output pixel's source point, rows outermost."""
    gx, gy = np.meshgrid(coords, coords)
    return np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1)


def _draw_panel(ax, panel: ResizePanel, n: int) -> None:
    from matplotlib.collections import LineCollection

    _draw_map(ax, input_map(n))
    points = _grid(panel.coords)
    style = {"s": 28, "zorder": 6, "ec": "white", "lw": 0.5}
    ax.scatter(
        *points.T, color="#d62728" if panel.picked is None else "#ff7f0e", gid="samples", label="output sample", **style
    )
    drawn = [points]
    for coords, picked, color, gid in (
        (panel.coords, panel.picked, "#ff7f0e", "picks"),
        (panel.other_coords, panel.other_picked, "#1f5fbf", "picks-other"),
    ):
        if picked is None:
            continue
        samples = _grid(coords)
        pixels = _grid(np.asarray(picked, np.float64))
        ax.add_collection(LineCollection(np.stack([samples, pixels], axis=1), colors=color, lw=1.0, alpha=0.7, gid=gid))
        if gid == "picks-other":
            ax.scatter(*samples.T, color=color, marker="s", gid="samples-other", label="half-pixel sample", **style)
        drawn.append(samples)
    drawn = np.concatenate(drawn)
    lo, hi = min(drawn.min(), -0.5) - 0.3, max(drawn.max(), n - 0.5) + 0.3
    ax.set_xlim(lo, hi)
    ax.set_ylim(hi, lo)  # rows grow downwards, as in an image
    ax.set_aspect("equal")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.tick_params(labelsize=8, length=2)
    ax.set_title(panel.title, fontsize=11)
    ax.set_label(panel.key)
    below = {"transform": ax.transAxes, "va": "top"}
    row = ", ".join(f"{v:.3g}" for v in panel.first_row)
    ax.text(0.0, -0.06, f"out[0, :] = {row}", fontsize=9, weight="bold", color="#b36b00", **below)
    ax.text(0.0, -0.11, "\n".join(panel.calls), fontsize=8.5, family="monospace", **below)


def resize_figure(n: int = 2, m: int = 4) -> Figure:
    """The figure: an (n x n) map of 10 row + col resized to (m x m) under four conventions.

    Each axes is labelled with its panel key (``ax.get_label()``: "half_pixel",
    "align_corners", "asymmetric", "nearest").  ValueError for sizes outside [1, 16]
    (input >= 2); ImportError without matplotlib.
    """
    panels = resize_panels(n, m)
    fig = _agg_figure((11.0, 12.5))
    axes = fig.subplots(2, 2).reshape(-1)
    for ax, panel in zip(axes, panels, strict=True):
        _draw_panel(ax, panel, n)
    fig.suptitle(
        f"Where each convention samples when a {n}x{n} map (values 10 row + col) is resized to {m}x{m}:\n"
        "output pixel (i, j) reads the input at the drawn point; pixel centres sit on the integer grid",
        fontsize=12,
    )
    fig.subplots_adjust(left=0.05, right=0.98, top=0.92, bottom=0.1, wspace=0.15, hspace=0.42)
    return fig


def save_resize_figure(path: str | Path, n: int = 2, m: int = 4) -> Path:
    """Write :func:`resize_figure` as a PNG at path (must end in .png)."""
    path = png_path(path)
    fig = resize_figure(n, m)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path
