"""Position-sensitive pooling (R-FCN): which channel each bin reads, and PS RoIPool's integer bins.

Position-sensitive RoIAlign / RoIPool pool bin (p, q) of output channel ``c`` from input
channel ``(c * out_h + p) * out_w + q`` (torchvision's order; ``docs/conventions.md``
section 6).  Rearranging the channels once, so that every (image, p, q) becomes a
"position map" of ``C / (out_h * out_w)`` channels, turns that into an ordinary pool of
one-bin boxes: box k's bin (p, q) reads position map ``(image_k * out_h + p) * out_w + q``.
Both implementations build on that rearrangement.  The XLA path sums each bin from its
box's tap tables; the Pallas path pools one-bin boxes (:func:`bin_boxes`) of the position
maps (:func:`bin_box_images`) with the avg RoIAlign kernels under :func:`bin_box_spec`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling
from jax_roialign.core.bins import box_bins
from jax_roialign.core.guards import images_in_range
from jax_roialign.core.sampling import divide, round_half_away_from_zero


def output_channels(channels: int, output_size: tuple[int, int]) -> int:
    """C / (out_h * out_w); a ValueError naming features when C is not a multiple of out_h * out_w."""
    out_h, out_w = output_size
    if channels % (out_h * out_w):
        raise ValueError(
            f"features must have a multiple of out_h * out_w = {out_h * out_w} channels for position-sensitive "
            f"pooling with output_size {output_size}, got {channels}"
        )
    return channels // (out_h * out_w)


def channel_mapping(channels_out: int, output_size: tuple[int, int]) -> np.ndarray:
    """(channels_out, out_h, out_w) int32: the input channel read by each output channel and bin.

    ``mapping[c, p, q] = (c * out_h + p) * out_w + q``, torchvision's ``channel_mapping``.
    """
    out_h, out_w = output_size
    return np.arange(channels_out * out_h * out_w, dtype=np.int32).reshape(channels_out, out_h, out_w)


def position_maps(features: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """(N * out_h * out_w, H, W, C_out) from (N, H, W, C): map ``(n * out_h + p) * out_w + q`` holds
    the channels ``(c * out_h + p) * out_w + q`` of image n, for c = 0 .. C_out - 1."""
    n, h, w, c = features.shape
    out_h, out_w = output_size
    maps = features.reshape(n, h, w, c // (out_h * out_w), out_h, out_w)
    return jnp.transpose(maps, (0, 4, 5, 1, 2, 3)).reshape(n * out_h * out_w, h, w, -1)


def bin_maps(images: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """(K, out_h, out_w) int32: the position map that bin (p, q) of a box of image images[k] reads."""
    out_h, out_w = output_size
    p = jnp.arange(out_h, dtype=jnp.int32)[None, :, None]
    q = jnp.arange(out_w, dtype=jnp.int32)[None, None, :]
    return (images[:, None, None] * out_h + p) * out_w + q


def bin_box_spec(spec: RoIAlignSpec) -> RoIAlignSpec:
    """The spec under which :func:`bin_boxes` reproduce spec's bins: one 1 x 1 avg bin,
    feature-map coordinates (spatial_scale 1), half-pixel offset, spec's sampling_ratio."""
    return RoIAlignSpec((1, 1), 1.0, spec.sampling_ratio, True, "avg")


def bin_box_images(batch_indices: jax.Array, n_images: int, output_size: tuple[int, int]) -> jax.Array:
    """(K, out_h, out_w) int32: the position map of :func:`position_maps` that bin (p, q) of each box reads.

    ``(n * out_h + p) * out_w + q`` for a batch index n in [0, n_images) (:func:`bin_maps`);
    -1 (no image, so the bin reads nothing and yields 0) for one outside it.
    """
    in_range, image = images_in_range(batch_indices, n_images)
    return jnp.where(in_range[:, None, None], bin_maps(image, output_size), -1)


def bin_boxes(boxes: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """(K, out_h, out_w, 4) [x1, y1, x2, y2]: bin (p, q) of each (K, 4) box as a box of its own.

    Contract: under :func:`bin_box_spec` (spec's sampling_ratio, one bin, spatial_scale 1,
    half-pixel offset), ``core.bins.box_bins`` of bin box (p, q) gives the start, bin
    size and sample grid of bin (p, q) of ``box_bins(boxes, spec)`` (its samples
    ``start + p * bin_size + (i + .5) * bin_size / grid`` on either axis, for any
    spatial_scale, aligned and sampling_ratio of spec):

    - the start and the bin size equal spec's up to a few roundings of the coordinates
      (the bin box is ``start + p * bin_size + .5`` and that plus the bin size, from
      which box_bins subtracts the .5 again): equal where those sums are exact, else
      within a few ulps of ``|start| + |bin size| + 1``;
    - the adaptive grid (``ceil`` of the bin box's size) is exactly spec's: where
      rounding would move the size across an integer, the size is moved back inside
      ``(grid - 1, grid]`` by a few ulps (to below 0 for a grid <= 0, a bin without
      samples), without changing its derivative.

    Differentiable in the boxes (plain arithmetic in the boxes' dtype): the derivative of
    a bin box's start and size is that of spec's bin, so pooling bin boxes has the box
    derivative of pooling the boxes.  Boxes must be finite (``guards.isolate_nonfinite_boxes``).
    """
    out_h, out_w = spec.output_size
    adaptive = spec.sampling_ratio <= 0
    by, bx = box_bins(boxes, spec)
    y1, y2 = _axis_bin_boxes(by, out_h, adaptive)
    x1, x2 = _axis_bin_boxes(bx, out_w, adaptive)
    shape = (boxes.shape[0], out_h, out_w)
    corners = (x1[:, None, :], y1[:, :, None], x2[:, None, :], y2[:, :, None])
    return jnp.stack([jnp.broadcast_to(c, shape) for c in corners], axis=-1)


def _axis_bin_boxes(bins: sampling.AxisBins, pooled: int, adaptive: bool) -> tuple[jax.Array, jax.Array]:
    """(lo, hi), each (K, pooled): the edges of every bin of one axis as one-bin boxes (:func:`bin_boxes`)."""
    # Every corner passes an optimization barrier: XLA's simplifier would otherwise fold
    # the + .5 here into box_bins' - .5 in some programs and not in others, so the sizes
    # checked here would not be those the caller's box_bins computes.
    barrier = jax.lax.optimization_barrier
    p = jnp.arange(pooled, dtype=bins.start.dtype)
    first = bins.start[:, None] + p * bins.bin_size[:, None]  # as sampling.sample_coordinate evaluates it
    size = jnp.broadcast_to(bins.bin_size[:, None], first.shape)
    lo = barrier(first + 0.5)
    start = lo - 0.5  # the bin box's start under bin_box_spec

    def hi(bin_size):
        return barrier((start + bin_size) + 0.5)

    if not adaptive:
        return lo, hi(size)
    grid = bins.grid[:, None]
    sub_grid = sampling.axis_bins(lo, hi(size), spatial_scale=1.0, aligned=True, pooled=1, sampling_ratio=0).grid
    kept = (sub_grid == grid) | ((grid <= 0) & (sub_grid <= 0))
    # Four roundings of at most half an ulp of |start| + |size| + 1 separate the bin box's
    # size from the size it was built from; a margin of twice that keeps the grid.
    sg = jax.lax.stop_gradient
    eps = sg(4 * jnp.finfo(first.dtype).eps * (jnp.abs(first) + jnp.abs(size) + 2.0))
    inside = jnp.where(grid >= 1, jnp.clip(size, grid - 1.0 + eps, grid - eps), jnp.minimum(size, -eps))
    return lo, barrier(jnp.where(kept, hi(size), hi(size + sg(inside - size))))


def pool_bin_edges(
    lo: jax.Array, hi: jax.Array, spatial_scale: float, pooled: int, length: int
) -> tuple[jax.Array, jax.Array]:
    """(first, end) cells of every bin of torchvision's ps_roi_pool along one axis, each (K, pooled) int32.

    Corners are scaled and rounded half away from zero; the size is ``max(end - start, 1)``
    (no +1, unlike roi_pool); bin p covers ``[floor(p * bin) + start, ceil((p + 1) * bin) + start)``
    clipped to [0, length - 1], so the last row / column is never read (torchvision's
    forward pass).  A bin with end <= first is empty.
    """
    start = round_half_away_from_zero(lo * spatial_scale)
    end = round_half_away_from_zero(hi * spatial_scale)
    bin_size = divide(jnp.maximum(end - start, 1.0), pooled)
    p = jnp.arange(pooled, dtype=lo.dtype)
    first = jnp.floor(p * bin_size[:, None]) + start[:, None]
    last = jnp.ceil((p + 1.0) * bin_size[:, None]) + start[:, None]
    return tuple(jnp.clip(v, 0, length - 1).astype(jnp.int32) for v in (first, last))


def mean_table(first: jax.Array, end: jax.Array, length: int, chunk: int, dtype: jnp.dtype) -> tuple[jax.Array, ...]:
    """(rows, weights), each (K, pooled, T): the mean over cells [first, end) of every bin as a tap table.

    T is ``length`` rounded up to a multiple of ``chunk``; row j of bin p is ``first + j``
    (clamped to the map) with weight ``1 / (end - first)`` inside [first, end), 0 elsewhere,
    so the table's leading chunks hold every cell of the bin.  Empty bins (end <= first)
    get all-zero weights.
    """
    size = -(-length // chunk) * chunk
    rows = first[..., None] + jnp.arange(size, dtype=jnp.int32)
    inside = rows < end[..., None]
    count = jnp.maximum(end - first, 1).astype(dtype)[..., None]
    return jnp.minimum(rows, length - 1), jnp.where(inside, 1.0 / count, 0.0).astype(dtype)
