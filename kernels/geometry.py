"""Per-box geometry the kernels read, built in XLA with the XLA path's sampling code.

Everything here runs outside the kernels (plain jax.numpy, vectorized over boxes) and
uses ``jax_roialign.xla.sampling`` for coordinates and weights, so the kernels see
exactly the numbers the XLA path computes:

- avg: the per-axis mean bilinear weights of every bin, dense over the map
  (K x out x map length; cheap next to the (K, out_h, out_w, C) output), plus the
  span of rows and column tiles each box reads;
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
    """What the avg kernels read about each box.

    Attributes:
      wy_by_row: (K, Hp, Pp) weight of map row h in output row p (forward: row by row).
      wy: (K, Pp, Hp) the same, transposed (backward: a tile of rows per output row).
      wx_tiles: (K, Tx, Qp, TW) weight of map column ``t * TW + i`` in output column q.
      row_start, row_count: (K,) int32 map rows the box reads.
      tile_start, tile_count: (K,) int32 column tiles the box reads.
    Hp, Pp, Qp, Tx * TW pad H, out_h, out_w, W with zero weights; a box whose batch
    index lies outside [0, N) reads nothing (counts 0).
    """

    wy_by_row: jax.Array
    wy: jax.Array
    wx_tiles: jax.Array
    row_start: jax.Array
    row_count: jax.Array
    tile_start: jax.Array
    tile_count: jax.Array


def avg_geometry(
    boxes: jax.Array,
    batch_indices: jax.Array,
    features_shape: tuple[int, int, int, int],
    spec: RoIAlignSpec,
    tile_rows: int,
    tile_cols: int,
) -> AvgGeometry:
    """AvgGeometry of finite (K, 4) boxes in the compute dtype."""
    n, h, w, _ = features_shape
    out_h, out_w = spec.output_size
    out_rows, out_cols = padded_output_size(spec)
    by, bx = box_bins(boxes, spec)
    in_range = guards.images_in_range(batch_indices, n)[0][:, None, None]
    wy = jnp.where(in_range, axis_weights(by, out_h, h, spec.sampling_ratio), 0.0)
    wx = jnp.where(in_range, axis_weights(bx, out_w, w, spec.sampling_ratio), 0.0)
    row_start, row_count = used_span(wy)
    col_start, col_count = used_span(wx)
    tile_start = col_start // tile_cols
    tile_count = jnp.where(col_count > 0, (col_start + col_count - 1) // tile_cols - tile_start + 1, 0)
    wy = jnp.pad(wy, ((0, 0), (0, out_rows - out_h), (0, round_up(h, tile_rows) - h)))
    wx = jnp.pad(wx, ((0, 0), (0, out_cols - out_w), (0, round_up(w, tile_cols) - w)))
    k = boxes.shape[0]
    wx_tiles = wx.reshape(k, out_cols, -1, tile_cols).transpose(0, 2, 1, 3)
    return AvgGeometry(
        jnp.swapaxes(wy, 1, 2), wy, wx_tiles, row_start, row_count, tile_start.astype(jnp.int32), tile_count
    )


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
