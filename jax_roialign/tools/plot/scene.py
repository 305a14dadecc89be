"""The arithmetic of the conventions figure: where each convention samples one box.

One box over the demo's 6x6 feature map (``X[row, col] = 10 * row + col``), four panels:
half-pixel RoIAlign (``aligned=True``), legacy RoIAlign (``aligned=False``),
onnxruntime's corner-term max, and TensorFlow's crop_and_resize; and two rotated panels,
the same box turned by ``angle`` degrees counter-clockwise (Detectron2's and mmcv's
positive angle) and with mmcv's ``clockwise=True``.  Nothing is re-derived here: bin
edges and sample coordinates come from ``jax_roialign.core.sampling`` (``axis_bins``,
``sample_coordinate``, ``bilinear_taps``, ``crop_axis_coordinates``) and
``jax_roialign.core.rotated`` (``rotated_bins``, ``sample_point``, ``frame_to_map``),
and each panel's pooled value of the first bin from ``jax_roialign.roi_align`` /
``roi_align_rotated`` / ``compat.tensorflow.crop_and_resize``, so the picture is true by
construction.

Frame: the library's read frame, in which pixel (row, col) has its value at the
integer point (col, row) (matplotlib's ``imshow`` frame).  A box edge at image
coordinate ``v`` names the pixel boundary ``v * spatial_scale - 0.5`` there (pixel j
spans [j, j + 1) in box coordinates), which is the outline drawn as "box".
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jax_roialign as jr
from jax_roialign.compat import tensorflow
from jax_roialign.conventions import RotatedSpec, check_spatial_scale, output_size_pair
from jax_roialign.core import rotated, sampling
from jax_roialign.tools.demo import MAP

DEFAULT_BOX: tuple[float, float, float, float] = (1.0, 1.0, 3.0, 3.0)
DEFAULT_OUTPUT_SIZE = 2
DEFAULT_SAMPLING_RATIO = 2
DEFAULT_ANGLE = 30.0  # degrees, for the rotated panels
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


class RotatedPanel(NamedTuple):
    """One rotated convention: where its samples fall (not separable per axis) and its first bin's value.

    samples (S, 2) and valid (S,): every sample as (x, y) in the read frame, bins and then
    samples row-major, and whether it reads the map (within [-1, size] on both axes);
    outline (4, 2): the box's corners; bin_lines (L, 2, 2): the bin boundaries as
    segments; first_bin (4, 2): the corners of bin (0, 0).
    """

    key: str
    title: str
    calls: tuple[str, ...]
    samples: np.ndarray
    valid: np.ndarray
    outline: np.ndarray
    bin_lines: np.ndarray
    first_bin: np.ndarray
    first_value: float


class Scene(NamedTuple):
    """The validated inputs of the figure (see :func:`make_scene`)."""

    box: tuple[float, float, float, float]
    output_size: tuple[int, int]
    sampling_ratio: int
    spatial_scale: float
    angle: float = DEFAULT_ANGLE


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
    angle: float = DEFAULT_ANGLE,
) -> Scene:
    """Validate the figure's inputs; ValueError / TypeError names the argument and value.

    box is (x1, y1, x2, y2) in input-image pixels (x1 <= x2, y1 <= y2, finite);
    output_size an int or (out_h, out_w), each >= 1; sampling_ratio an int, <= 0 for
    adaptive; spatial_scale a finite number > 0; angle (degrees, the rotated panels) a
    finite number.
    """
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int):
        raise TypeError(f"sampling_ratio must be an int, got {sampling_ratio!r}")
    if isinstance(angle, bool) or not isinstance(angle, (int, float)):
        raise TypeError(f"angle must be a number (degrees), got {angle!r}")
    if not math.isfinite(angle):
        raise ValueError(f"angle must be finite, got {angle!r}")
    scale = check_spatial_scale(spatial_scale)
    return Scene(check_box(box), output_size_pair(output_size), sampling_ratio, scale, float(angle))


# The geometry below is a handful of tiny array programs; one compiled call each is far
# cheaper than dispatching (and compiling) every operation eagerly.
_axis_bins = jax.jit(sampling.axis_bins, static_argnames=("spatial_scale", "aligned", "pooled", "sampling_ratio"))
_bilinear_taps = jax.jit(sampling.bilinear_taps, static_argnames="length")
_crop_axis_coordinates = jax.jit(sampling.crop_axis_coordinates, static_argnames=("crop", "length"))


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


@functools.partial(jax.jit, static_argnames=("spec", "grid"))
def _rotated_geometry(box: jax.Array, spec: RotatedSpec, grid: tuple[int, int]) -> tuple[jax.Array, ...]:
    """(y, x) of every sample (out_h, out_w, gh, gw) and of the outline, bin lines and first bin, from core.rotated."""
    bins = rotated.expand(rotated.rotated_bins(box, spec), 5)
    (out_h, out_w), (gh, gw) = spec.output_size, grid
    index = [jnp.arange(n, dtype=box.dtype) for n in (out_h, out_w, gh, gw)]
    p, q, iy, ix = jnp.meshgrid(*index, indexing="ij")
    samples = rotated.sample_point(bins, p[None], q[None], iy[None], ix[None])
    flat = jax.tree.map(lambda a: a.reshape(()), bins)
    half_h, half_w = -flat.y.start, -flat.x.start
    corners = (jnp.stack([-half_h, -half_h, half_h, half_h]), jnp.stack([-half_w, half_w, half_w, -half_w]))
    rows = flat.y.start + jnp.arange(out_h + 1, dtype=box.dtype) * flat.y.bin_size  # lines along the width
    cols = flat.x.start + jnp.arange(out_w + 1, dtype=box.dtype) * flat.x.bin_size  # lines along the height
    ends_h, ends_w = jnp.stack([-half_w, half_w]), jnp.stack([-half_h, half_h])
    lines = (
        jnp.concatenate([jnp.broadcast_to(rows[:, None], (out_h + 1, 2)), ends_w[None].repeat(out_w + 1, 0)]),
        jnp.concatenate([ends_h[None].repeat(out_h + 1, 0), jnp.broadcast_to(cols[:, None], (out_w + 1, 2))]),
    )
    first = (
        jnp.stack([rows[0], rows[0], rows[1], rows[1]]),
        jnp.stack([cols[0], cols[1], cols[1], cols[0]]),
    )
    return (
        tuple(v[0] for v in samples),
        rotated.frame_to_map(flat, *corners),
        rotated.frame_to_map(flat, *lines),
        rotated.frame_to_map(flat, *first),
    )


def rotated_panel(scene: Scene, clockwise: bool, feature_map: np.ndarray = MAP) -> RotatedPanel:
    """The scene's box as [cx, cy, w, h, angle] under roi_align_rotated (half-pixel), every number from the library.

    ValueError if a bin would hold more than MAX_SAMPLES_PER_AXIS samples per axis.
    """
    height, width = feature_map.shape
    x1, y1, x2, y2 = scene.box
    box = jnp.float32([[(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, scene.angle]])
    spec = RotatedSpec(scene.output_size, scene.spatial_scale, scene.sampling_ratio, True, clockwise)
    bins = jax.jit(rotated.rotated_bins, static_argnames="spec")(box, spec)
    grid = (max(int(bins.y.grid[0]), 0), max(int(bins.x.grid[0]), 0))
    for pooled, g in zip(scene.output_size, grid, strict=True):
        if pooled * g > MAX_SAMPLES_PER_AXIS:
            raise ValueError(
                f"output_size x sampling grid must be <= {MAX_SAMPLES_PER_AXIS} samples per axis to stay legible, "
                f"got {pooled} x {g} (output_size={scene.output_size}, sampling_ratio={scene.sampling_ratio})"
            )
    (ys, xs), outline, lines, first = (np.asarray(v) for v in _rotated_geometry(box, spec, grid))
    ty, tx = _bilinear_taps(jnp.asarray(ys), height), _bilinear_taps(jnp.asarray(xs), width)
    valid = np.asarray((ty.w_lo + ty.w_hi > 0) & (tx.w_lo + tx.w_hi > 0)).reshape(-1)
    value = jr.roi_align_rotated(
        jnp.asarray(feature_map)[None, :, :, None],
        box,
        scene.output_size,
        spatial_scale=scene.spatial_scale,
        sampling_ratio=scene.sampling_ratio,
        clockwise=clockwise,
    )
    angle = f"{scene.angle:g}"
    if clockwise:
        title = f"rotated RoIAlign, angle {angle} deg, clockwise=True\n(mmcv: the angle negated)"
        calls = (
            f"jr.roi_align_rotated(..., [cx, cy, w, h, {angle}], clockwise=True)",
            f"mmcv roi_align_rotated(angle={math.radians(scene.angle):.4g} rad, clockwise=True)",
            f"= Detectron2 ROIAlignRotated with angle {-scene.angle:g}",
            "half-pixel (mmcv aligned=False: no -0.5)",
        )
    else:
        title = f"rotated RoIAlign, angle +{angle} deg\n(counter-clockwise on screen)"
        calls = (
            f"jr.roi_align_rotated(..., [cx, cy, w, h, {angle}])",
            f"Detectron2 ROIAlignRotated (degrees): {angle}",
            f"mmcv roi_align_rotated (radians): {math.radians(scene.angle):.4g}",
            "half-pixel: the centre moves by -0.5",
        )
    return RotatedPanel(
        "rotated_clockwise" if clockwise else "rotated",
        title,
        calls,
        np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1),
        valid,
        np.stack(outline[::-1], axis=1),
        np.stack([lines[1], lines[0]], axis=2),
        np.stack(first[::-1], axis=1),
        float(value[0, 0, 0, 0]),
    )
