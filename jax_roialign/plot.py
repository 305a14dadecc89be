"""``python -m jax_roialign plot``: where each convention samples one box, drawn as a PNG.

One box over the seed's 6x6 feature map (``X[row, col] = 10 * row + col``), four panels
side by side: half-pixel RoIAlign (``aligned=True``), legacy RoIAlign (``aligned=False``),
onnxruntime's corner-term max, and TensorFlow's crop_and_resize.  Nothing is re-derived
here: bin edges and sample coordinates come from ``jax_roialign.xla.sampling``
(``axis_bins``, ``sample_coordinate``, ``bilinear_taps``), crop_and_resize's samples from
``jax_roialign.xla.crop_and_resize``, and each panel's pooled value of the first bin from
``jax_roialign.roi_align`` / ``compat.tensorflow.crop_and_resize``, so the picture is
true by construction.

Drawing frame: the library's read frame, in which pixel (row, col) has its value at the
integer point (col, row) (matplotlib's ``imshow`` frame).  A box edge at image
coordinate ``v`` names the pixel boundary ``v * spatial_scale - 0.5`` there (pixel j
spans [j, j + 1) in box coordinates), which is the outline drawn as "box".

matplotlib (the ``viz`` extra) is imported only when a figure is made; the figure is
drawn on an Agg canvas without pyplot (no display needed, no global backend switch).
Without matplotlib the figure functions raise an ImportError naming the extra.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jax_roialign as jr
from jax_roialign.compat import tensorflow
from jax_roialign.conventions import check_spatial_scale, output_size_pair
from jax_roialign.demo import MAP
from jax_roialign.xla import sampling
from jax_roialign.xla.crop_and_resize import axis_coordinates as crop_axis_coordinates

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_BOX: tuple[float, float, float, float] = (1.0, 1.0, 3.0, 3.0)
DEFAULT_OUTPUT_SIZE = 2
DEFAULT_SAMPLING_RATIO = 2
# Beyond this many samples per axis (output size x grid) the panels turn into solid ink.
MAX_SAMPLES_PER_AXIS = 64


class AxisSamples(NamedTuple):
    """Samples of one axis in the read frame.

    coords (pooled, grid) float32: sample ``i`` of bin ``p``; valid (pooled, grid) bool:
    the sample reads the map (RoIAlign: within [-1, length]; crop_and_resize: within
    [0, length - 1], else extrapolation_value); edges (pooled + 1,) float32 bin
    boundaries, or None where there are no bins (crop_and_resize: grid 1, one sample
    per output pixel).
    """

    coords: np.ndarray
    valid: np.ndarray
    edges: np.ndarray | None


class CornerTerms(NamedTuple):
    """The weighted corner terms of the first bin's samples (onnxruntime's max), T taps.

    samples (T, 2) and pixels (T, 2) are (x, y) points in the read frame; weights (T,)
    the bilinear weights ``wy * wx``; terms (T,) ``weight * X[row, col]``.  Taps of
    zero weight (the clamped border neighbour, samples outside the map) are left out.
    """

    samples: np.ndarray
    pixels: np.ndarray
    weights: np.ndarray
    terms: np.ndarray


class Panel(NamedTuple):
    """One convention: what it is called, where it samples and what its first bin pools to."""

    key: str
    title: str
    calls: tuple[str, ...]
    y: AxisSamples
    x: AxisSamples
    first_value: float
    corner_terms: CornerTerms | None = None


class Scene(NamedTuple):
    """The validated inputs of the figure (see :func:`make_scene`)."""

    box: tuple[float, float, float, float]
    output_size: tuple[int, int]
    sampling_ratio: int
    spatial_scale: float


def check_box(box: object) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) as floats: four finite real numbers with x1 <= x2 and y1 <= y2."""
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError) as err:
        raise TypeError(f"box must be four numbers (x1, y1, x2, y2), got {box!r}") from err
    if len(values) != 4:
        raise ValueError(f"box must be four numbers (x1, y1, x2, y2), got {box!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"box must be finite, got {box!r}")
    x1, y1, x2, y2 = values
    if x2 < x1 or y2 < y1:
        raise ValueError(f"box must have x1 <= x2 and y1 <= y2, got {box!r}")
    return x1, y1, x2, y2


def make_scene(
    box: tuple[float, float, float, float] = DEFAULT_BOX,
    output_size: int | tuple[int, int] = DEFAULT_OUTPUT_SIZE,
    sampling_ratio: int = DEFAULT_SAMPLING_RATIO,
    spatial_scale: float = 1.0,
) -> Scene:
    """Validate the figure's inputs; ValueError / TypeError names the argument and value.

    box is (x1, y1, x2, y2) in input-image pixels (x1 <= x2, y1 <= y2, finite);
    output_size an int or (out_h, out_w), each >= 1; sampling_ratio an int, <= 0 for
    adaptive; spatial_scale a finite number > 0.
    """
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int):
        raise TypeError(f"sampling_ratio must be an int, got {sampling_ratio!r}")
    return Scene(check_box(box), output_size_pair(output_size), sampling_ratio, check_spatial_scale(spatial_scale))


# The geometry below is a handful of tiny array programs; one compiled call each is far
# cheaper than dispatching (and compiling) every operation eagerly.
_axis_bins = jax.jit(sampling.axis_bins, static_argnames=("spatial_scale", "aligned", "pooled", "sampling_ratio"))
_bilinear_taps = jax.jit(sampling.bilinear_taps, static_argnames="length")
_crop_axis_coordinates = jax.jit(crop_axis_coordinates, static_argnames=("crop", "length"))


@functools.partial(jax.jit, static_argnames=("pooled", "grid", "length"))
def _bin_samples(bins: sampling.AxisBins, pooled: int, grid: int, length: int) -> tuple[jax.Array, ...]:
    """(coords (pooled, grid), reads the map (pooled, grid), edges (pooled + 1,)) of one axis."""
    p = jnp.arange(pooled, dtype=bins.start.dtype)
    coords = sampling.sample_coordinate(bins, p[:, None], jnp.arange(grid, dtype=p.dtype)[None, :])
    taps = sampling.bilinear_taps(coords, length)
    edges = bins.start + jnp.arange(pooled + 1, dtype=p.dtype) * bins.bin_size
    return coords, taps.w_lo + taps.w_hi > 0, edges


def roi_align_axis(lo: float, hi: float, length: int, pooled: int, scene: Scene, aligned: bool) -> AxisSamples:
    """RoIAlign's samples along one axis of the box edge pair (lo, hi), from the sampling module.

    ValueError if pooled x grid exceeds MAX_SAMPLES_PER_AXIS.
    """
    bins = _axis_bins(
        jnp.float32(lo),
        jnp.float32(hi),
        spatial_scale=scene.spatial_scale,
        aligned=aligned,
        pooled=pooled,
        sampling_ratio=scene.sampling_ratio,
    )
    grid = max(int(bins.grid), 0)
    if pooled * grid > MAX_SAMPLES_PER_AXIS:
        raise ValueError(
            f"output_size x sampling grid must be <= {MAX_SAMPLES_PER_AXIS} samples per axis to stay legible, "
            f"got {pooled} x {grid} (output_size={scene.output_size}, sampling_ratio={scene.sampling_ratio})"
        )
    return AxisSamples(*(np.asarray(v) for v in _bin_samples(bins, pooled, grid, length)))


def normalized_box(scene: Scene, height: int, width: int) -> tuple[float, float, float, float]:
    """crop_and_resize's [y1, x1, y2, x2] for the scene's box: map coordinates over (size - 1).

    The demo's choice: the box's corners then fall on the centres of the pixels its
    edges start at (TF maps a normalized v to ``v * (size - 1)``).
    """
    x1, y1, x2, y2 = (v * scene.spatial_scale for v in scene.box)
    return y1 / (height - 1), x1 / (width - 1), y2 / (height - 1), x2 / (width - 1)


def crop_axis(lo: float, hi: float, crop: int, length: int) -> AxisSamples:
    """crop_and_resize's samples along one axis (normalized lo, hi), from the library's kernel."""
    coords, valid = _crop_axis_coordinates(jnp.float32([lo]), jnp.float32([hi]), crop, length)
    return AxisSamples(np.asarray(coords).reshape(crop, 1), np.asarray(valid).reshape(crop, 1), None)


def corner_terms(y: AxisSamples, x: AxisSamples, feature_map: np.ndarray) -> CornerTerms:
    """The weighted corner terms of the first bin's samples, from sampling.bilinear_taps."""
    height, width = feature_map.shape
    ty = _bilinear_taps(jnp.asarray(y.coords[0]), height)
    tx = _bilinear_taps(jnp.asarray(x.coords[0]), width)
    # (grid, 2) per axis: column 0 the low neighbour and its weight, column 1 the high one.
    rows, wy = np.stack([ty.lo, ty.hi], 1), np.stack([ty.w_lo, ty.w_hi], 1)
    cols, wx = np.stack([tx.lo, tx.hi], 1), np.stack([tx.w_lo, tx.w_hi], 1)
    # Every (y sample a, x sample b, y neighbour r, x neighbour c), flattened.
    grids = np.meshgrid(np.arange(len(rows)), np.arange(len(cols)), [0, 1], [0, 1], indexing="ij")
    a, b, r, c = (g.reshape(-1) for g in grids)
    weight = wy[a, r] * wx[b, c]
    keep = weight > 0
    row, col = rows[a, r][keep], cols[b, c][keep]
    samples = np.stack([x.coords[0][b], y.coords[0][a]], axis=1)[keep]
    return CornerTerms(samples, np.stack([col, row], axis=1), weight[keep], weight[keep] * feature_map[row, col])


def first_bin(scene: Scene, feature_map: np.ndarray, *, aligned: bool, mode: str) -> float:
    """out[0, 0] of jax_roialign.roi_align for the scene's box on the one-channel map."""
    out = jr.roi_align(
        jnp.asarray(feature_map)[None, :, :, None],
        jnp.float32([scene.box]),
        scene.output_size,
        batch_indices=jnp.int32([0]),
        spatial_scale=scene.spatial_scale,
        sampling_ratio=scene.sampling_ratio,
        aligned=aligned,
        mode=mode,
    )
    return float(out[0, 0, 0, 0])


def panels(scene: Scene, feature_map: np.ndarray = MAP) -> tuple[Panel, ...]:
    """The four panels of the figure for a (H, W) float32 map (H, W >= 2), every number from the library.

    ValueError if a panel would hold more than MAX_SAMPLES_PER_AXIS samples per axis.
    """
    height, width = feature_map.shape
    (out_h, out_w), (x1, y1, x2, y2) = scene.output_size, scene.box
    ratio = scene.sampling_ratio

    def roi(aligned: bool) -> tuple[AxisSamples, AxisSamples]:
        y = roi_align_axis(y1, y2, height, out_h, scene, aligned)
        return y, roi_align_axis(x1, x2, width, out_w, scene, aligned)

    half_y, half_x = roi(True)
    legacy_y, legacy_x = roi(False)
    ny1, nx1, ny2, nx2 = normalized_box(scene, height, width)
    crop = tensorflow.crop_and_resize(
        feature_map[None, :, :, None], jnp.float32([[ny1, nx1, ny2, nx2]]), jnp.int32([0]), scene.output_size
    )
    size = f"{out_h}x{out_w}"
    return (
        Panel(
            "aligned",
            "half-pixel RoIAlign\n(aligned=True)",
            (
                f"jr.roi_align(..., aligned=True, sampling_ratio={ratio})",
                "torchvision roi_align(aligned=True)",
                "Detectron2 ROIAlignV2, mmcv RoIAlign",
                "ONNX RoiAlign-16 half_pixel (avg)",
            ),
            half_y,
            half_x,
            first_bin(scene, feature_map, aligned=True, mode="avg"),
        ),
        Panel(
            "legacy",
            "legacy RoIAlign\n(aligned=False)",
            (
                f"jr.roi_align(..., aligned=False, sampling_ratio={ratio})",
                "torchvision roi_align (default)",
                "Caffe2 RoIAlign, ONNX RoiAlign-10",
                "ONNX RoiAlign-16 output_half_pixel",
            ),
            legacy_y,
            legacy_x,
            first_bin(scene, feature_map, aligned=False, mode="avg"),
        ),
        Panel(
            "corner_max",
            "onnxruntime max\n(largest weighted corner term)",
            (
                f"jr.roi_align(..., mode='corner_max', sampling_ratio={ratio})",
                "onnxruntime RoiAlign mode='max'",
                "samples: half_pixel's (shown);",
                "opset 10 / output_half_pixel: legacy's",
            ),
            half_y,
            half_x,
            first_bin(scene, feature_map, aligned=True, mode="corner_max"),
            corner_terms(half_y, half_x, feature_map),
        ),
        Panel(
            "crop_and_resize",
            "TF crop_and_resize\n(corner-aligned, 1 sample per pixel)",
            (
                f"compat.tensorflow.crop_and_resize(..., {scene.output_size})",
                "tf.image.crop_and_resize",
                f"box [y1, x1, y2, x2] = [{ny1:.3g}, {nx1:.3g}, {ny2:.3g}, {nx2:.3g}]",
                f"(box x spatial_scale / (size - 1)); {size} crop",
            ),
            crop_axis(ny1, ny2, out_h, height),
            crop_axis(nx1, nx2, out_w, width),
            float(crop[0, 0, 0, 0]),
        ),
    )


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
) -> Figure:
    """The figure: one box on the seed's 6x6 map under four conventions, side by side.

    Arguments as :func:`make_scene` (ValueError / TypeError on bad ones, also when a
    panel would draw more than MAX_SAMPLES_PER_AXIS samples per axis).  Each axes is
    labelled with its panel key (``ax.get_label()``: "aligned", "legacy",
    "corner_max", "crop_and_resize"); artists carry gids ("samples",
    "samples-outside", "bin-edges", "crop", "first-bin", "box", "taps", "max-term") so
    the drawn coordinates can be read back.  The Figure sits on an Agg canvas (no
    pyplot); ImportError without matplotlib.
    """
    scene = make_scene(box, output_size, sampling_ratio, spatial_scale)
    fig = _agg_figure((11.5, 14.0))  # first: a missing matplotlib fails before any computation
    drawn = panels(scene)
    axes = fig.subplots(2, 2).reshape(-1)
    for ax, panel in zip(axes, drawn, strict=True):
        _draw_panel(ax, panel, scene, MAP)
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
        "on a 6x6 map X[row, col] = 10 row + col (numbers in the pixels)",
        fontsize=12,
    )
    fig.subplots_adjust(left=0.05, right=0.98, top=0.91, bottom=0.155, wspace=0.15, hspace=0.45)
    return fig


def save_conventions_figure(path: str | Path, **kwargs) -> Path:
    """Write :func:`conventions_figure` (kwargs passed on) as a PNG at path (must end in .png)."""
    path = png_path(path)
    fig = conventions_figure(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path


def _argument(parse):
    """An argparse type from a parser that raises ValueError / TypeError with a clear message."""

    def parsed(text: str):
        try:
            return parse(text)
        except (ValueError, TypeError) as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    parsed.__name__ = parse.__name__
    return parsed


def _numbers(text: str, kind: type, name: str) -> list:
    """Comma-separated numbers of one kind, or a ValueError naming the flag."""
    try:
        return [kind(v) for v in text.split(",")]
    except ValueError as err:
        raise ValueError(f"{name} must be comma-separated {kind.__name__}s, got {text!r}") from err


def _number(text: str, kind: type, name: str) -> float | int:
    """One number of the given kind, or a ValueError naming the flag."""
    try:
        return kind(text)
    except ValueError as err:
        raise ValueError(f"{name} must be one {kind.__name__}, got {text!r}") from err


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x1,y1,x2,y2' -> the checked box."""
    return check_box(_numbers(text, float, "box"))


def parse_output_size(text: str) -> tuple[int, int]:
    """'N' or 'H,W' -> (out_h, out_w), each >= 1."""
    values = _numbers(text, int, "output-size")
    return output_size_pair(values[0] if len(values) == 1 else tuple(values), name="output-size")


def parse_spatial_scale(text: str) -> float:
    """A finite number > 0."""
    return check_spatial_scale(_number(text, float, "spatial-scale"), name="spatial-scale")


def parse_sampling_ratio(text: str) -> int:
    """An int; <= 0 is adaptive."""
    return _number(text, int, "sampling-ratio")


def png_path(path: str | Path) -> Path:
    """path as a Path; it must end in .png (the figure is always written as PNG)."""
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"output must be a .png path, got {str(path)!r}")
    return Path(path)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``plot``: --output, --box, --output-size, --sampling-ratio, --spatial-scale."""
    parser.add_argument(
        "--output",
        type=_argument(png_path),
        default=Path("conventions.png"),
        metavar="PNG",
        help="where to write the figure (default: %(default)s)",
    )
    parser.add_argument(
        "--box",
        type=_argument(parse_box),
        default=DEFAULT_BOX,
        metavar="X1,Y1,X2,Y2",
        help="the box in input-image pixels (default: 1,1,3,3; negative: --box=-1,0,3,3)",
    )
    parser.add_argument(
        "--output-size",
        type=_argument(parse_output_size),
        default=(DEFAULT_OUTPUT_SIZE,) * 2,
        metavar="N|H,W",
        help=f"pooled output size (default: {DEFAULT_OUTPUT_SIZE})",
    )
    parser.add_argument(
        "--sampling-ratio",
        type=_argument(parse_sampling_ratio),
        default=DEFAULT_SAMPLING_RATIO,
        metavar="R",
        help=f"samples per bin and axis, <= 0 adaptive (default: {DEFAULT_SAMPLING_RATIO})",
    )
    parser.add_argument(
        "--spatial-scale",
        type=_argument(parse_spatial_scale),
        default=1.0,
        metavar="S",
        help="box-to-map scale (default: 1)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the figure to args.output; exit status 2 (message on stderr) if the inputs do not fit."""
    try:
        path = save_conventions_figure(
            args.output,
            box=args.box,
            output_size=args.output_size,
            sampling_ratio=args.sampling_ratio,
            spatial_scale=args.spatial_scale,
        )
    except ValueError as err:
        print(f"jax-roialign plot: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
