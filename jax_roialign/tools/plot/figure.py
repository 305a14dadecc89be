"""Drawing the conventions figure (matplotlib, the ``viz`` extra).

matplotlib is imported only when a figure is made; the figure is drawn on an Agg canvas
without pyplot (no display needed, no global backend switch).  Without matplotlib the
figure functions raise an ImportError naming the extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jax_roialign.tools.demo import MAP
from jax_roialign.tools.plot.scene import (
    DEFAULT_ANGLE,
    DEFAULT_BOX,
    DEFAULT_OUTPUT_SIZE,
    DEFAULT_SAMPLING_RATIO,
    CornerTerms,
    Panel,
    RotatedPanel,
    Scene,
    make_scene,
    panels,
    rotated_panel,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _agg_figure(figsize: tuple[float, float]) -> Figure:
    """An empty Figure on an Agg canvas (no pyplot, no global backend switch), or an ImportError naming the extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError('the conventions figure needs matplotlib: pip install "jax-roialign[viz]"') from err
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def sample_points(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """(points (S, 2) as (x, y), valid (S,)) of every sample of the panel, rows outermost."""
    ys, xs = panel.y.coords.reshape(-1), panel.x.coords.reshape(-1)
    vy, vx = panel.y.valid.reshape(-1), panel.x.valid.reshape(-1)
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1)
    return points, (vy[:, None] & vx[None, :]).reshape(-1)


def _draw_map(ax, feature_map: np.ndarray) -> None:
    """The map as faint pixels with their values, pixel edges and pixel centres."""
    height, width = feature_map.shape
    ax.imshow(feature_map, cmap="Greys", alpha=0.15, extent=(-0.5, width - 0.5, height - 0.5, -0.5), zorder=0)
    ax.hlines(np.arange(height + 1) - 0.5, -0.5, width - 0.5, colors="0.6", lw=0.6, zorder=1)
    ax.vlines(np.arange(width + 1) - 0.5, -0.5, height - 0.5, colors="0.6", lw=0.6, zorder=1)
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    ax.scatter(cols.reshape(-1), rows.reshape(-1), s=10, color="0.45", zorder=2, label="pixel centre")
    for (row, col), value in np.ndenumerate(feature_map):
        ax.text(col - 0.44, row - 0.44, f"{value:g}", fontsize=7, color="0.35", ha="left", va="top", zorder=2)


def _draw_panel(ax, panel: Panel, scene: Scene, feature_map: np.ndarray) -> None:
    """One panel: the map, the box, the bins (or crop), the samples, the taps and the captions."""
    import matplotlib.patches as patches

    height, width = feature_map.shape
    _draw_map(ax, feature_map)
    x1, y1, x2, y2 = (v * scene.spatial_scale - 0.5 for v in scene.box)
    ax.add_patch(
        patches.Rectangle(
            (x1, y1),
            x2 - x1,
            y2 - y1,
            fill=False,
            ec="black",
            ls="--",
            lw=2.0,
            zorder=5,
            gid="box",
            label="box (pixel j spans [j, j+1))",
        )
    )
    if panel.x.edges is not None and panel.y.edges is not None:
        xe, ye = panel.x.edges, panel.y.edges
        ax.add_patch(
            patches.Rectangle(
                (xe[0], ye[0]), xe[1] - xe[0], ye[1] - ye[0], color="#ffb000", alpha=0.35, zorder=3, gid="first-bin"
            )
        )
        ax.vlines(xe, ye[0], ye[-1], colors="#1f5fbf", lw=1.6, zorder=4, gid="bin-edges", label="bin boundary")
        ax.hlines(ye, xe[0], xe[-1], colors="#1f5fbf", lw=1.6, zorder=4, gid="bin-edges")
    else:
        # No bins: the first output pixel is its one sample; shade the pixel it sits in and
        # outline the crop, which runs from the first sample to the last (corner-aligned).
        xc, yc = panel.x.coords[0, 0], panel.y.coords[0, 0]
        ax.add_patch(
            patches.Rectangle((xc - 0.5, yc - 0.5), 1, 1, color="#ffb000", alpha=0.35, zorder=3, gid="first-bin")
        )
        xs, ys = panel.x.coords, panel.y.coords
        ax.add_patch(
            patches.Rectangle(
                (xs.min(), ys.min()),
                np.ptp(xs),
                np.ptp(ys),
                fill=False,
                ec="#1f5fbf",
                lw=1.6,
                zorder=4,
                gid="crop",
                label="crop: first to last sample",
            )
        )
    if panel.corner_terms is not None:
        _draw_corner_terms(ax, panel.corner_terms)
    points, valid = sample_points(panel)
    style = {"color": "#d62728", "zorder": 6}
    ax.scatter(*points[valid].T, s=30, ec="white", lw=0.6, gid="samples", label="sample", **style)
    if not valid.all():  # drawn (and in the legend) only when some sample misses the map
        outside = "reads extrapolation_value" if panel.x.edges is None else "outside [-1, size]: reads 0"
        ax.scatter(*points[~valid].T, s=36, marker="x", gid="samples-outside", label=f"sample {outside}", **style)
    # The whole map, widened to the box, the bins and every sample that lie beyond it.
    xs = np.concatenate([[-0.5, width - 0.5, x1, x2], points[:, 0] - 0.3, points[:, 0] + 0.3])
    ys = np.concatenate([[-0.5, height - 0.5, y1, y2], points[:, 1] - 0.3, points[:, 1] + 0.3])
    if panel.x.edges is not None and panel.y.edges is not None:
        xs, ys = np.concatenate([xs, panel.x.edges]), np.concatenate([ys, panel.y.edges])
    ax.set_xlim(xs.min() - 0.1, xs.max() + 0.1)
    ax.set_ylim(ys.max() + 0.1, ys.min() - 0.1)  # rows grow downwards, as in an image
    ax.set_aspect("equal")
    ax.set_xticks(range(width))
    ax.set_yticks(range(height))
    ax.tick_params(labelsize=8, length=2)
    ax.set_xlabel("column", fontsize=8, labelpad=1)
    ax.set_ylabel("row", fontsize=8, labelpad=1)
    ax.set_title(panel.title, fontsize=11)
    ax.set_label(panel.key)
    below = {"transform": ax.transAxes, "va": "top"}
    value = f"shaded first bin: out[0, 0] = {panel.first_value:g}"
    ax.text(0.0, -0.085, value, fontsize=10, weight="bold", color="#b36b00", **below)
    ax.text(0.0, -0.125, "\n".join(panel.calls), fontsize=8.5, family="monospace", **below)


def _draw_rotated_panel(ax, panel: RotatedPanel, feature_map: np.ndarray) -> None:
    """A rotated panel: the map, the turned box and its bins, the samples and the captions."""
    import matplotlib.patches as patches
    from matplotlib.collections import LineCollection

    height, width = feature_map.shape
    _draw_map(ax, feature_map)
    style = {"closed": True, "zorder": 5}
    ax.add_patch(patches.Polygon(panel.outline, fill=False, ec="black", ls="--", lw=2.0, gid="box", **style))
    ax.add_patch(patches.Polygon(panel.first_bin, color="#ffb000", alpha=0.35, gid="first-bin", **style))
    ax.add_collection(LineCollection(panel.bin_lines, colors="#1f5fbf", lw=1.6, zorder=4, gid="bin-edges"))
    dots = {"color": "#d62728", "zorder": 6}
    points, valid = panel.samples, panel.valid
    ax.scatter(*points[valid].T, s=30, ec="white", lw=0.6, gid="samples", **dots)
    if not valid.all():
        ax.scatter(*points[~valid].T, s=36, marker="x", gid="samples-outside", **dots)
    extent = np.concatenate([[[-0.5, -0.5], [width - 0.5, height - 0.5]], panel.outline, points])
    ax.set_xlim(extent[:, 0].min() - 0.3, extent[:, 0].max() + 0.3)
    ax.set_ylim(extent[:, 1].max() + 0.3, extent[:, 1].min() - 0.3)  # rows grow downwards
    ax.set_aspect("equal")
    ax.set_xticks(range(width))
    ax.set_yticks(range(height))
    ax.tick_params(labelsize=8, length=2)
    ax.set_xlabel("column", fontsize=8, labelpad=1)
    ax.set_ylabel("row", fontsize=8, labelpad=1)
    ax.set_title(panel.title, fontsize=11)
    ax.set_label(panel.key)
    below = {"transform": ax.transAxes, "va": "top"}
    ax.text(
        0.0,
        -0.085,
        f"shaded first bin: out[0, 0] = {panel.first_value:g}",
        fontsize=10,
        weight="bold",
        color="#b36b00",
        **below,
    )
    ax.text(0.0, -0.125, "\n".join(panel.calls), fontsize=8.5, family="monospace", **below)


def _draw_corner_terms(ax, terms: CornerTerms) -> None:
    """Lines from each sample of the first bin to its four corner pixels, widths = weights."""
    from matplotlib.collections import LineCollection

    if terms.terms.size == 0:  # no sample of the first bin reads the map
        return
    segments = np.stack([terms.samples, terms.pixels.astype(np.float32)], axis=1)
    ax.add_collection(
        LineCollection(
            segments,
            linewidths=0.5 + 4.0 * terms.weights,
            colors="#2ca02c",
            alpha=0.8,
            zorder=5,
            gid="taps",
            label="tap to a corner pixel\n(width = bilinear weight)",
        )
    )
    best = int(np.argmax(terms.terms))
    col, row = terms.pixels[best]
    ax.scatter(
        [col],
        [row],
        s=160,
        marker="*",
        color="#2ca02c",
        ec="black",
        lw=0.6,
        zorder=7,
        gid="max-term",
        label="largest weighted corner term",
    )
    ax.annotate(
        f"{terms.weights[best]:g} x X[{row}, {col}]\n= {terms.terms[best]:g}",
        (col, row),
        xytext=(60, 40),
        textcoords="offset points",
        fontsize=9,
        va="bottom",
        arrowprops={"arrowstyle": "->", "color": "#2ca02c"},
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#2ca02c", "alpha": 0.9},
        zorder=8,
    )


def conventions_figure(
    box: tuple[float, float, float, float] = DEFAULT_BOX,
    output_size: int | tuple[int, int] = DEFAULT_OUTPUT_SIZE,
    *,
    sampling_ratio: int = DEFAULT_SAMPLING_RATIO,
    spatial_scale: float = 1.0,
    angle: float = DEFAULT_ANGLE,
) -> Figure:
    """The figure: one box on the seed's 6x6 map under four conventions, and turned by angle, side by side.

    Arguments as :func:`make_scene` (ValueError / TypeError on bad ones, also when a
    panel would draw more than MAX_SAMPLES_PER_AXIS samples per axis).  Each axes is
    labelled with its panel key (``ax.get_label()``: "aligned", "legacy",
    "corner_max", "crop_and_resize", "rotated", "rotated_clockwise"); artists carry
    gids ("samples", "samples-outside", "bin-edges", "crop", "first-bin", "box",
    "taps", "max-term") so the drawn coordinates can be read back.  The Figure sits on
    an Agg canvas (no pyplot); ImportError without matplotlib.
    """
    scene = make_scene(box, output_size, sampling_ratio, spatial_scale, angle)
    fig = _agg_figure((11.5, 20.5))  # first: a missing matplotlib fails before any computation
    drawn = panels(scene)
    turned = (rotated_panel(scene, clockwise=False), rotated_panel(scene, clockwise=True))
    axes = fig.subplots(3, 2).reshape(-1)
    for ax, panel in zip(axes, drawn, strict=False):
        _draw_panel(ax, panel, scene, MAP)
    for ax, panel in zip(axes[len(drawn) :], turned, strict=True):
        _draw_rotated_panel(ax, panel, MAP)
    legend: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=4, fontsize=9, frameon=False)
    box_text = ", ".join(f"{v:g}" for v in scene.box)
    ratio = f"{scene.sampling_ratio}" + (" (adaptive)" if scene.sampling_ratio <= 0 else "")
    fig.suptitle(
        f"Where RoIAlign samples box ({box_text}) (x1, y1, x2, y2), spatial_scale {scene.spatial_scale:g},\n"
        f"output {scene.output_size[0]}x{scene.output_size[1]}, sampling_ratio {ratio}, "
        "on a 6x6 map X[row, col] = 10 row + col (numbers in the pixels);\n"
        f"bottom row: the same box turned by {scene.angle:g} degrees about its centre",
        fontsize=12,
    )
    fig.subplots_adjust(left=0.05, right=0.98, top=0.93, bottom=0.11, wspace=0.15, hspace=0.42)
    return fig


def save_conventions_figure(path: str | Path, **kwargs) -> Path:
    """Write :func:`conventions_figure` (kwargs passed on) as a PNG at path (must end in .png)."""
    path = png_path(path)
    fig = conventions_figure(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path


def png_path(path: str | Path) -> Path:
    """path as a Path; it must end in .png (the figure is always written as PNG)."""
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"output must be a .png path, got {str(path)!r}")
    return Path(path)
