"""Rotated RoIAlign's per-box and per-sample arithmetic, shared by every implementation.

A rotated box ``[cx, cy, w, h, angle]`` is sampled on a grid laid out in the box's own
frame (origin at the box centre, y along its height, x along its width), exactly as the
axis-aligned RoIAlign lays out one axis (``core/sampling.py``: ``start + p * bin +
(i + 0.5) * bin / grid`` with ``start = -size / 2``); each grid point ``(yy, xx)`` is then
turned by the angle and moved to the centre (``docs/conventions.md`` section 5)::

    y = yy * cos(theta) - xx * sin(theta) + cy'
    x = yy * sin(theta) + xx * cos(theta) + cx'

A positive angle turns the box counter-clockwise as an image is displayed (y down).
Every function works in the boxes' dtype (the compute dtype) and is differentiable in
all five box parameters; the sample count of an adaptive grid is not (it is piecewise
constant in the box).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RotatedSpec
from jax_roialign.core import sampling


class RotatedBins(NamedTuple):
    """Bins of rotated boxes; every field broadcasts against the output (leading axis K).

    ``y`` and ``x`` are the bins along the box's height and width in the box frame
    (``start = -size / 2``); ``center_y``, ``center_x`` the centre on the map; ``cos``,
    ``sin`` those of the angle.
    """

    center_y: jax.Array
    center_x: jax.Array
    cos: jax.Array
    sin: jax.Array
    y: sampling.AxisBins
    x: sampling.AxisBins


def _frame_axis(size: jax.Array, pooled: int, spec: RotatedSpec) -> sampling.AxisBins:
    """Bins along one box-frame axis of length size, centred on 0."""
    bin_size = sampling.divide(size, pooled)
    if spec.sampling_ratio > 0:
        grid = jnp.full_like(bin_size, spec.sampling_ratio)
    else:
        # Not differentiable: the number of samples is piecewise constant in the box.
        quotient = sampling.divide(jax.lax.stop_gradient(size), pooled)
        if spec.float32_grid:  # mmcv: ceilf() rounds its argument to float32 first
            quotient = quotient.astype(jnp.float32).astype(size.dtype)
        grid = jnp.ceil(quotient)
    return sampling.AxisBins(-0.5 * size, bin_size, grid)


def rotated_bins(boxes: jax.Array, spec: RotatedSpec) -> RotatedBins:
    """Bins of (K, 5) [cx, cy, w, h, angle] boxes in input-image coordinates; fields (K,).

    aligned=True moves the centre by -0.5 after scaling; aligned=False keeps it and
    clamps the scaled width and height to >= 1 (mmcv's legacy form).  Degrees become
    radians as ``angle * pi / 180`` (Detectron2's order); clockwise negates the angle.
    """
    offset = 0.5 if spec.aligned else 0.0
    s = spec.spatial_scale
    center_x = boxes[:, 0] * s - offset
    center_y = boxes[:, 1] * s - offset
    width = boxes[:, 2] * s
    height = boxes[:, 3] * s
    if not spec.aligned:
        width, height = jnp.maximum(width, 1.0), jnp.maximum(height, 1.0)
    theta = boxes[:, 4]
    if spec.angle_unit == "degrees":
        theta = sampling.divide(theta * math.pi, 180.0)
    if spec.clockwise:
        theta = -theta
    out_h, out_w = spec.output_size
    y = _frame_axis(height, out_h, spec)
    x = _frame_axis(width, out_w, spec)
    return RotatedBins(center_y, center_x, jnp.cos(theta), jnp.sin(theta), y, x)


def expand(bins: RotatedBins, ndim: int) -> RotatedBins:
    """bins with every (K,) field reshaped to (K, 1, ..., 1) of rank ndim."""
    return jax.tree.map(lambda a: a.reshape(a.shape + (1,) * (ndim - a.ndim)), bins)


def samples_per_bin(bins: RotatedBins) -> jax.Array:
    """Samples in each bin, as int32: ``max(grid_h, 0) * max(grid_w, 0)`` (no samples for a grid <= 0)."""
    gy = jnp.maximum(bins.y.grid, 0.0).astype(jnp.int32)
    gx = jnp.maximum(bins.x.grid, 0.0).astype(jnp.int32)
    return gy * gx


def sample_point(
    bins: RotatedBins, p: jax.Array, q: jax.Array, iy: jax.Array, ix: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(y, x) on the map of sample (iy, ix) of bin (p, q), in the frameworks' order of operations."""
    yy = sampling.sample_coordinate(bins.y, p, iy)
    xx = sampling.sample_coordinate(bins.x, q, ix)
    return frame_to_map(bins, yy, xx)


def frame_to_map(bins: RotatedBins, yy: jax.Array, xx: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(y, x) on the map of the box-frame point (yy, xx): turned by the angle, moved to the centre."""
    y = yy * bins.cos - xx * bins.sin + bins.center_y
    x = yy * bins.sin + xx * bins.cos + bins.center_x
    return y, x


def with_dummy_grid(bins: RotatedBins) -> RotatedBins:
    """bins with every grid raised to >= 1, so that a bin without samples computes finite
    coordinates and gradients (callers mask it with the count of the original bins)."""
    return bins._replace(
        y=bins.y._replace(grid=jnp.maximum(bins.y.grid, 1.0)), x=bins.x._replace(grid=jnp.maximum(bins.x.grid, 1.0))
    )


def flat_sample(bins: RotatedBins, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(iy, ix) of the t-th sample (row-major: ix fastest) of every bin, in the compute dtype.

    t is a non-negative int32 scalar; the grids must be >= 1 (:func:`with_dummy_grid`);
    t is valid where ``t < samples_per_bin`` of the original bins.  Integer division keeps
    iy and ix exact (a float t / grid may round below an integer under jit).
    """
    grid_x = bins.x.grid.astype(jnp.int32)
    iy = (t // grid_x).astype(bins.y.start.dtype)
    ix = (t % grid_x).astype(bins.y.start.dtype)
    return iy, ix
