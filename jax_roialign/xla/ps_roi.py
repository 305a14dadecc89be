"""Position-sensitive RoIAlign and RoIPool (R-FCN; torchvision ps_roi_align / ps_roi_pool) in plain jax.numpy.

Inputs are canonical: features (N, H, W, C), boxes (K, 4) [x1, y1, x2, y2], batch_indices
(K,) int32.  Bin (p, q) of output channel c reads input channel ``(c * out_h + p) * out_w
+ q`` (``docs/conventions.md`` section 6).  After one rearrangement of the channels
(``core.position_sensitive.position_maps``), every bin of every box is a one-bin pool of
its own position map, computed from per-axis taps with the separable tap sum of the avg
RoIAlign (``xla/tap_sum.py``): RoIAlign's own weights for ps_roi_align, the uniform
weights of an integer bin for ps_roi_pool.  Data-dependent bins (adaptive grids, pooled
cells) use the smallest window of WINDOW_TIERS that holds every bin of the call, picked
at run time; bins larger than every tier are summed point by point with ``loop_sum``
(samples for ps_roi_align, cells for ps_roi_pool), exact for any size.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards, position_sensitive, sampling
from jax_roialign.core.bins import box_bins, compute_dtype
from jax_roialign.core.loop_sum import Term, loop_sum
from jax_roialign.xla.roi_align import WINDOW_TIERS
from jax_roialign.xla.tap_sum import tap_sum

# taps(boxes, window) -> ((rows, weights) along y, each (K, out_h, T), (columns, weights) along x, (K, out_w, T)).
Taps = Callable[[jax.Array, int], tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]]
# points(boxes) -> (reader, params, geometry, count): reader(params, geometry, t) gives the t-th point of every
# bin as [(rows, columns, weights)], each (K, out_h, out_w), differentiable in params; count (K, ...) the number
# of points of each bin.
Points = Callable[[jax.Array], tuple[Callable, object, object, jax.Array]]


def ps_roi_align(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """Position-sensitive RoIAlign of canonical inputs: (K, out_h, out_w, C / (out_h * out_w)).

    spec must be avg and is used as given (torchvision's op is ``aligned=True``).  Bin
    (p, q) of output channel c is ``roi_align(features, boxes, spec)`` of bin (p, q) on
    input channel ``(c * out_h + p) * out_w + q``: the same samples, weights and edge
    rules (conventions.md section 1), so a bin without samples (adaptive grid of a box of
    zero size) yields 0.  Accumulation is float32 (float64 for float64 features).  A box
    whose batch index lies outside [0, N) yields zeros; one with a non-finite coordinate
    yields NaN and passes no gradient.  Differentiable in the features and the boxes.
    """
    cdt = compute_dtype(features.dtype)
    boxes, batch_indices, finite = guards.isolate_nonfinite_boxes(boxes.astype(cdt), batch_indices)
    x = features.astype(cdt)
    _, h, w, _ = x.shape
    out_h, out_w = spec.output_size
    taps = functools.partial(_align_taps, spec=spec, h=h, w=w)
    if spec.sampling_ratio > 0:
        out = _tap_pool(x, boxes, batch_indices, spec.output_size, taps, 2 * spec.sampling_ratio)
    else:
        by, bx = box_bins(boxes, spec)
        extent = sampling.adaptive_row_extent
        need = jnp.maximum(
            jnp.max(jax.vmap(functools.partial(extent, pooled=out_h, length=h))(by), initial=0.0),
            jnp.max(jax.vmap(functools.partial(extent, pooled=out_w, length=w))(bx), initial=0.0),
        )
        points = functools.partial(_align_points, spec=spec, h=h, w=w)
        out = _windowed(x, boxes, batch_indices, spec.output_size, taps, points, need)
    return guards.mark_nonfinite(out, finite).astype(features.dtype)


def ps_roi_pool(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    output_size: tuple[int, int],
    spatial_scale: float,
) -> jax.Array:
    """Position-sensitive RoIPool of canonical inputs: (K, out_h, out_w, C / (out_h * out_w)).

    Bin (p, q) of output channel c is the mean of input channel ``(c * out_h + p) *
    out_w + q`` over the cells of ``core.position_sensitive.pool_bin_edges`` (torchvision's
    forward pass: corners rounded half away from zero, bins clipped to [0, H - 1] x
    [0, W - 1]); an empty bin yields 0.  Accumulation is float32 (float64 for float64).
    The gradient w.r.t. the features is the derivative of this forward pass (1 / area on
    each cell of the bin); the boxes get none.  Bad batch indices and non-finite boxes as
    in :func:`ps_roi_align`.
    """
    cdt = compute_dtype(features.dtype)
    boxes = jax.lax.stop_gradient(boxes.astype(cdt))
    boxes, batch_indices, finite = guards.isolate_nonfinite_boxes(boxes, batch_indices)
    x = features.astype(cdt)
    _, h, w, _ = x.shape
    edges = functools.partial(_pool_edges, output_size=output_size, spatial_scale=spatial_scale, h=h, w=w)
    (y0, y1), (x0, x1) = edges(boxes)
    need = jnp.maximum(jnp.max(y1 - y0, initial=0), jnp.max(x1 - x0, initial=0))
    taps = functools.partial(_mean_taps, edges=edges, h=h, w=w)
    points = functools.partial(_cell_points, edges=edges)
    out = _windowed(x, boxes, batch_indices, output_size, taps, points, need)
    return guards.mark_nonfinite(out, finite).astype(features.dtype)


def _align_taps(boxes: jax.Array, window: int, spec: RoIAlignSpec, h: int, w: int):
    """RoIAlign's per-axis taps: fixed_grid_taps for a fixed grid, adaptive_grid_taps in a window."""
    out_h, out_w = spec.output_size
    if spec.sampling_ratio > 0:
        taps = functools.partial(sampling.fixed_grid_taps, grid=spec.sampling_ratio)
    else:
        taps = functools.partial(sampling.adaptive_grid_taps, window=window)
    by, bx = box_bins(boxes, spec)
    ty = jax.vmap(functools.partial(taps, pooled=out_h, length=h))(by)
    tx = jax.vmap(functools.partial(taps, pooled=out_w, length=w))(bx)
    return ty, tx


def _pool_edges(boxes: jax.Array, output_size: tuple[int, int], spatial_scale: float, h: int, w: int):
    """((first, end) rows, (first, end) columns) of ps_roi_pool's bins, each (K, out_h) / (K, out_w) int32."""
    out_h, out_w = output_size
    edges = position_sensitive.pool_bin_edges
    return (
        edges(boxes[:, 1], boxes[:, 3], spatial_scale, out_h, h),
        edges(boxes[:, 0], boxes[:, 2], spatial_scale, out_w, w),
    )


def _mean_taps(boxes: jax.Array, window: int, edges: Callable, h: int, w: int):
    """Uniform taps of ps_roi_pool's integer bins."""
    (y0, y1), (x0, x1) = edges(boxes)
    mean = functools.partial(position_sensitive.mean_taps, window=window, dtype=boxes.dtype)
    return mean(y0, y1, length=h), mean(x0, x1, length=w)


def _align_points(boxes: jax.Array, spec: RoIAlignSpec, h: int, w: int):
    """RoIAlign's samples, one per step: (reader, params (the bins), consts (1 / (gh * gw)), count (K, 1, 1))."""
    by, bx = box_bins(boxes, spec)
    count = (jnp.maximum(by.grid, 0.0) * jnp.maximum(bx.grid, 0.0)).astype(jnp.int32)
    # Bins without samples compute with a dummy grid of 1 (finite values and gradients), masked by count.
    by, bx = (b._replace(grid=jnp.maximum(b.grid, 1.0)) for b in (by, bx))
    params = jax.tree.map(lambda a: a[:, None, None], (by, bx))
    scale = (1.0 / jnp.maximum(count, 1).astype(boxes.dtype))[:, None, None]
    out_h, out_w = spec.output_size
    return SamplePoint(h, w, out_h, out_w), params, scale, count[:, None, None]


@dataclasses.dataclass(frozen=True)
class SamplePoint:
    """The four taps of sample t (row-major) of every bin, [(rows, columns, weights)], each (K, out_h, out_w)."""

    h: int
    w: int
    out_h: int
    out_w: int

    def __call__(self, bins, scale: jax.Array, t: jax.Array) -> list[tuple[jax.Array, jax.Array, jax.Array]]:
        by, bx = bins
        grid_x = bx.grid.astype(jnp.int32)
        iy, ix = (t // grid_x).astype(by.start.dtype), (t % grid_x).astype(by.start.dtype)
        p = jnp.arange(self.out_h, dtype=iy.dtype)[None, :, None]
        q = jnp.arange(self.out_w, dtype=ix.dtype)[None, None, :]
        ty = sampling.bilinear_taps(sampling.sample_coordinate(by, p, iy), self.h)
        tx = sampling.bilinear_taps(sampling.sample_coordinate(bx, q, ix), self.w)
        return [
            (rows, cols, wy * wx * scale)
            for rows, wy in ((ty.lo, ty.w_lo), (ty.hi, ty.w_hi))
            for cols, wx in ((tx.lo, tx.w_lo), (tx.hi, tx.w_hi))
        ]


def _cell_points(boxes: jax.Array, edges: Callable):
    """ps_roi_pool's cells, one per step (row-major in the bin), each weighted 1 / area; nothing differentiable."""
    (y0, y1), (x0, x1) = edges(boxes)
    y0, height = y0[:, :, None], (y1 - y0)[:, :, None]
    x0, width = x0[:, None, :], (x1 - x0)[:, None, :]
    count = jnp.maximum(height, 0) * jnp.maximum(width, 0)
    geometry = (y0, x0, jnp.maximum(width, 1), 1.0 / jnp.maximum(count, 1).astype(boxes.dtype))
    return _cell_point, (), geometry, count


def _cell_point(params, geometry, t: jax.Array) -> list[tuple[jax.Array, jax.Array, jax.Array]]:
    """Cell t (row-major) of every bin: [(rows, columns, 1 / area)], each (K, out_h, out_w)."""
    y0, x0, width, weight = geometry
    return [(y0 + t // width, x0 + t % width, weight)]


def _windowed(
    x: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    output_size: tuple[int, int],
    taps: Taps,
    points: Points,
    need: jax.Array,
) -> jax.Array:
    """The pool in the smallest window of WINDOW_TIERS that holds ``need`` rows and columns, chosen at run time.

    Maps of at most WINDOW_TIERS[-1] rows and columns end with a window of the whole
    map; larger maps end with the point-by-point sum, which holds any bin.  Every
    branch is exact for the bins that reach it.
    """
    _, h, w, _ = x.shape
    windows = [t for t in WINDOW_TIERS if t < max(h, w)]
    branches = [functools.partial(_tap_pool, x, boxes, batch_indices, output_size, taps, t) for t in windows]
    if max(h, w) <= WINDOW_TIERS[-1]:
        branches.append(functools.partial(_tap_pool, x, boxes, batch_indices, output_size, taps, max(h, w)))
    else:
        branches.append(functools.partial(_point_pool, x, boxes, batch_indices, output_size, points))
    tier = jnp.sum(need > jnp.asarray(windows, need.dtype)).astype(jnp.int32)
    return jax.lax.switch(tier, branches)


def _tap_pool(
    x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, output_size: tuple[int, int], taps: Taps, window: int
) -> jax.Array:
    """(K, out_h, out_w, C_out): every bin of every box as a one-bin tap sum of its position map.

    taps(boxes, window) gives the per-axis rows / columns and weights of every bin (at
    most ``window`` per axis and bin).
    """
    n, h, w, c = x.shape
    out_h, out_w = output_size
    maps = position_sensitive.position_maps(x, output_size)

    def pool(boxes: jax.Array, batch_indices: jax.Array) -> jax.Array:
        k = boxes.shape[0]
        (ry, wy), (rx, wx) = taps(boxes, window)
        in_range, image = guards.images_in_range(batch_indices, n)
        wy = jnp.where(in_range[:, None, None], wy, 0.0)

        def per_bin(a: jax.Array, axis: int) -> jax.Array:
            """(K, P, T) or (K, Q, T) to one row per bin of every box: (K * out_h * out_w, 1, T)."""
            n_taps = a.shape[-1]
            return jnp.broadcast_to(jnp.expand_dims(a, axis), (k, out_h, out_w, n_taps)).reshape(
                k * out_h * out_w, 1, n_taps
            )

        images = position_sensitive.bin_maps(image, output_size).reshape(-1)
        out = tap_sum(maps, images, per_bin(ry, 2), per_bin(wy, 2), per_bin(rx, 1), per_bin(wx, 1))
        return out.reshape(k, out_h, out_w, maps.shape[3])

    # Per box: the backward pass's scatter update of one row tap (all its column taps), or the weights.
    itemsize = x.dtype.itemsize
    per_box = max(
        2 * out_h * out_w * window * (c // (out_h * out_w)) * itemsize, 16 * (out_h * h + out_w * w) * itemsize
    )
    return guards.map_box_chunks(pool, boxes, batch_indices, per_box)


def _point_pool(
    x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, output_size: tuple[int, int], points: Points
) -> jax.Array:
    """(K, out_h, out_w, C_out): every bin summed point by point with loop_sum (bins of any size)."""
    n, _, _, c = x.shape
    out_h, out_w = output_size
    maps = position_sensitive.position_maps(x, output_size)

    def pool(boxes: jax.Array, batch_indices: jax.Array) -> jax.Array:
        reader, params, geometry, count = points(boxes)
        in_range, image = guards.images_in_range(batch_indices, n)
        images = jnp.where(in_range[:, None, None], position_sensitive.bin_maps(image, output_size), -1)
        term = Term(PointTerm(reader))
        return loop_sum(term, jnp.max(count, initial=0), maps, params, (geometry, count, images))

    per_box = 4 * out_h * out_w * (c // (out_h * out_w)) * x.dtype.itemsize  # the output and one update
    return guards.map_box_chunks(pool, boxes, batch_indices, per_box)


@dataclasses.dataclass(frozen=True)
class PointTerm:
    """Term t of the point-by-point sum: (K, out_h, out_w, C_out), the weighted read of the t-th point
    of every bin from its position map; linear in the maps, differentiable in params.

    reader(params, geometry, t) gives the points as [(rows, columns, weights)]; consts
    (geometry, count, images): bins with at most t points, and boxes of a bad image (map
    index -1), read nothing.
    """

    reader: Callable

    def __call__(self, t: jax.Array, maps: jax.Array, params, consts) -> jax.Array:
        geometry, count, images = consts
        live = (t < count) & (images >= 0)
        safe = jnp.maximum(images, 0)
        total = None
        for rows, cols, weight in self.reader(params, geometry, t):
            read = jnp.where(live, weight, 0.0)[..., None] * maps[safe, rows, cols]
            total = read if total is None else total + read
        return total
