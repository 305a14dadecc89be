"""Per-box geometry the kernels read, built in XLA with the XLA path's sampling code.

Everything here runs outside the kernels (plain jax.numpy, vectorized over boxes) and
uses ``jax_roialign.xla.sampling`` for coordinates and weights, so the kernels see
exactly the numbers the XLA path computes:

- avg: the per-axis mean bilinear weights of every bin, dense over the map
  (K x out x map length; cheap next to the (K, out_h, out_w, C) output), plus the
  span of rows and columns each box reads; each kernel variant cuts them into the
  tiles of its block sizes (:func:`tiles`, :func:`tile_span`);
- max / corner_max: the per-axis bins (start, bin size, grid) of every box, from
  which the kernels compute each sample's coordinate in their loops;
- both backward passes: the boxes of each image in a fixed order.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards, sampling
from jax_roialign.core.bins import box_bins

from .config import next_power_of_two, round_up


def padded_output_size(spec: RoIAlignSpec) -> tuple[int, int]:
    """(out_h, out_w) rounded up to powers of two: the kernels' output block."""
    out_h, out_w = spec.output_size
    return next_power_of_two(out_h), next_power_of_two(out_w)


def axis_weights(bins: sampling.AxisBins, pooled: int, length: int, sampling_ratio: int) -> jax.Array:
    """(K, pooled, length): weight of map row ``h`` in output row ``p`` (one axis, every box).

    Row p of the result is the mean bilinear read weight of bin p's samples on each
    map row, from ``sampling.fixed_grid_taps`` (fixed grid; taps reading the same
    row are added) or ``sampling.adaptive_grid_taps`` with a window of the whole
    axis (adaptive grid; exact for any grid size).
    """
    if sampling_ratio > 0:
        taps = functools.partial(sampling.fixed_grid_taps, pooled=pooled, grid=sampling_ratio, length=length)
        rows, weights = jax.vmap(taps)(bins)
        hit = rows[..., None] == jnp.arange(length, dtype=rows.dtype)
        return jnp.sum(jnp.where(hit, weights[..., None], 0.0), axis=2)
    taps = functools.partial(sampling.adaptive_grid_taps, pooled=pooled, length=length, window=length)
    # A window of the whole axis starts at row 0: the weights are already dense, rows in order.
    return jax.vmap(taps)(bins)[1]


def used_span(weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(first, count), each (K,) int32: the map rows with a nonzero weight, first..first+count-1.

    ``weights`` is (K, pooled, length); count is 0 for a box that reads nothing.
    """
    used = jnp.any(weights != 0, axis=1)
    length = used.shape[1]
    first = jnp.argmax(used, axis=1)
    last = length - 1 - jnp.argmax(used[:, ::-1], axis=1)
    count = jnp.where(jnp.any(used, axis=1), last - first + 1, 0)
    return first.astype(jnp.int32), count.astype(jnp.int32)


class AvgGeometry(NamedTuple):
    """What the avg kernels read about each box, independent of how a kernel tiles it.

    Attributes:
      wy: (K, out_h, H) weight of map row h in output row p.
      wx: (K, out_w, W) weight of map column w in output column q.
      row_start, row_count: (K,) int32 map rows the box reads.
      col_start, col_count: (K,) int32 map columns the box reads.
    A box whose batch index lies outside [0, N) reads nothing (zero weights, counts 0).
    Each kernel variant lays the weights out for its own data movement (:func:`tiles`).
    """

    wy: jax.Array
    wx: jax.Array
    row_start: jax.Array
    row_count: jax.Array
    col_start: jax.Array
    col_count: jax.Array


def avg_geometry(
    boxes: jax.Array, batch_indices: jax.Array, features_shape: tuple[int, int, int, int], spec: RoIAlignSpec
) -> AvgGeometry:
    """AvgGeometry of finite (K, 4) boxes in the compute dtype."""
    n, h, w, _ = features_shape
    out_h, out_w = spec.output_size
    by, bx = box_bins(boxes, spec)
    in_range = guards.images_in_range(batch_indices, n)[0][:, None, None]
    wy = jnp.where(in_range, axis_weights(by, out_h, h, spec.sampling_ratio), 0.0)
    wx = jnp.where(in_range, axis_weights(bx, out_w, w, spec.sampling_ratio), 0.0)
    return AvgGeometry(wy, wx, *used_span(wy), *used_span(wx))


def tiles(weights: jax.Array, pooled: int, tile: int) -> jax.Array:
    """(K, length / tile, pooled, tile): (K, out, length) weights cut into tiles of the map axis.

    ``pooled`` >= out and a multiple of ``tile`` along the map axis pad with zero
    weights: tile t, entry [p, i] is the weight of map position ``t * tile + i`` in
    output p.
    """
    k, out, length = weights.shape
    padded = jnp.pad(weights, ((0, 0), (0, pooled - out), (0, round_up(length, tile) - length)))
    return padded.reshape(k, pooled, -1, tile).transpose(0, 2, 1, 3)


def tile_span(start: jax.Array, count: jax.Array, tile: int) -> tuple[jax.Array, jax.Array]:
    """(first tile, tile count), each (K,) int32, of the positions start .. start + count - 1 (count 0: none)."""
    first = start // tile
    tile_count = jnp.where(count > 0, (start + count - 1) // tile - first + 1, 0)
    return first.astype(jnp.int32), tile_count.astype(jnp.int32)


class MaxGeometry(NamedTuple):
    """What the max kernels read about each box.

    Attributes:
      y_bins, x_bins: (K, 3) [start, bin_size, grid] per axis, the compute dtype;
        grids are at least 1 (a bin without samples computes with a dummy grid of
        one and is skipped through n_samples, as on the XLA path).
      image: (K,) int32 batch index.
      n_samples: (K,) int32 samples per bin (0: none, or a batch index outside [0, N)).
      grid_x: (K,) int32 samples per bin along x (sample t is (t // grid_x, t % grid_x)).
    """

    y_bins: jax.Array
    x_bins: jax.Array
    image: jax.Array
    n_samples: jax.Array
    grid_x: jax.Array


def max_geometry(boxes: jax.Array, batch_indices: jax.Array, n_images: int, spec: RoIAlignSpec) -> MaxGeometry:
    """MaxGeometry of finite (K, 4) boxes in the compute dtype."""
    by, bx = box_bins(boxes, spec)
    in_range, _ = guards.images_in_range(batch_indices, n_images)
    n_samples = (jnp.maximum(by.grid, 0.0) * jnp.maximum(bx.grid, 0.0)).astype(jnp.int32)

    def table(bins: sampling.AxisBins) -> jax.Array:
        # The barrier keeps the grid a run-time value for the kernel's division: interpreted
        # kernels are XLA, whose simplifier would turn a division by a constant grid (a fixed
        # sampling_ratio) into a multiplication by its reciprocal (see sampling.divide).
        return jax.lax.optimization_barrier(jnp.stack([bins.start, bins.bin_size, jnp.maximum(bins.grid, 1.0)], 1))

    return MaxGeometry(
        table(by),
        table(bx),
        batch_indices.astype(jnp.int32),
        jnp.where(in_range, n_samples, 0),
        jnp.maximum(bx.grid, 1.0).astype(jnp.int32),
    )


def sample_coordinate(start: jax.Array, bin_size: jax.Array, grid: jax.Array, p: jax.Array, i: jax.Array) -> jax.Array:
    """Coordinate of sample i of bin p: ``sampling.sample_coordinate`` as kernels can compute it.

    The same expression in the same order of operations; only the division is a
    plain one, because ``sampling.divide``'s optimization barrier has no Pallas
    lowering.  Inside a kernel the grid is a value read from memory, so the division
    stays an IEEE division (tested bitwise against the shared function).
    """
    return start + p * bin_size + (i + 0.5) * bin_size / grid


class ImageRanges(NamedTuple):
    """The boxes of every image in a fixed order, for owner-computes backward passes.

    Image n's boxes are ``order[start[n]:start[n + 1]]``, ascending box index; boxes
    with a batch index outside [0, N) appear in no range.
    """

    order: jax.Array
    start: jax.Array


def image_ranges(batch_indices: jax.Array, n_images: int) -> ImageRanges:
    """ImageRanges of (K,) batch indices (a stable sort: deterministic)."""
    order = jnp.argsort(batch_indices, stable=True)
    start = jnp.searchsorted(batch_indices[order], jnp.arange(n_images + 1, dtype=batch_indices.dtype))
    return ImageRanges(order.astype(jnp.int32), start.astype(jnp.int32))
