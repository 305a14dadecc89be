"""Position-sensitive RoIAlign and RoIPool (R-FCN; torchvision ps_roi_align / ps_roi_pool) in plain jax.numpy.

Inputs are canonical: features (N, H, W, C), boxes (K, 4) [x1, y1, x2, y2], batch_indices
(K,) int32.  Bin (p, q) of output channel c reads input channel ``(c * out_h + p) * out_w
+ q`` (``docs/conventions.md`` section 6).  After one rearrangement of the channels
(``core.position_sensitive.position_maps``), every bin of every box is a one-bin pool of
its own position map, so both ops run through the separable tap sum of the avg RoIAlign
(``xla/tap_sum.py``) with RoIAlign's own per-axis weights (ps_roi_align) or the uniform
weights of an integer bin (ps_roi_pool).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards, position_sensitive, sampling
from jax_roialign.core.bins import box_bins, compute_dtype
from jax_roialign.xla.roi_align import WINDOW_TIERS
from jax_roialign.xla.tap_sum import tap_sum

# taps(boxes, window) -> ((rows, weights) along y, each (K, out_h, T), (columns, weights) along x).
Taps = Callable[[jax.Array, int], tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]]


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
    _, h, w, _ = features.shape
    out_h, out_w = spec.output_size
    if spec.sampling_ratio > 0:
        taps = functools.partial(_align_taps, spec=spec, h=h, w=w)
        out = _ps_pool(features.astype(cdt), boxes, batch_indices, spec.output_size, taps, 2 * spec.sampling_ratio)
    else:
        by, bx = box_bins(boxes, spec)
        extent = sampling.adaptive_row_extent
        need = jnp.maximum(
            jnp.max(jax.vmap(functools.partial(extent, pooled=out_h, length=h))(by), initial=0.0),
            jnp.max(jax.vmap(functools.partial(extent, pooled=out_w, length=w))(bx), initial=0.0),
        )
        taps = functools.partial(_align_taps, spec=spec, h=h, w=w)
        out = _windowed(features.astype(cdt), boxes, batch_indices, spec.output_size, taps, need)
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
    _, h, w, _ = features.shape
    edges = functools.partial(_pool_edges, output_size=output_size, spatial_scale=spatial_scale, h=h, w=w)
    (y0, y1), (x0, x1) = edges(boxes)
    need = jnp.maximum(jnp.max(y1 - y0, initial=0), jnp.max(x1 - x0, initial=0))
    taps = functools.partial(_mean_taps, edges=edges, h=h, w=w, dtype=cdt)
    out = _windowed(features.astype(cdt), boxes, batch_indices, output_size, taps, need)
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
    out_h, out_w = output_size
    edges = position_sensitive.pool_bin_edges
    return edges(boxes[:, 1], boxes[:, 3], spatial_scale, out_h, h), edges(
        boxes[:, 0], boxes[:, 2], spatial_scale, out_w, w
    )


def _mean_taps(boxes: jax.Array, window: int, edges: Callable, h: int, w: int, dtype: jnp.dtype):
    """Uniform taps of ps_roi_pool's integer bins."""
    (y0, y1), (x0, x1) = edges(boxes)
    return position_sensitive.mean_taps(y0, y1, window, h, dtype), position_sensitive.mean_taps(
        x0, x1, window, w, dtype
    )


def _windowed(
    x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, output_size: tuple[int, int], taps: Taps, need: jax.Array
) -> jax.Array:
    """_ps_pool in the smallest window of WINDOW_TIERS (or the whole map) that holds ``need`` rows and columns.

    The window is chosen at run time with lax.switch; every branch is exact for bins
    that fit it.
    """
    _, h, w, _ = x.shape
    tiers = [t for t in WINDOW_TIERS if t < max(h, w)] + [max(h, w)]
    branches = [functools.partial(_ps_pool, x, boxes, batch_indices, output_size, taps, t) for t in tiers]
    tier = jnp.sum(need > jnp.asarray(tiers[:-1], need.dtype)).astype(jnp.int32)
    return jax.lax.switch(tier, branches)


def _ps_pool(
    x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, output_size: tuple[int, int], taps: Taps, window: int
) -> jax.Array:
    """(K, out_h, out_w, C_out): every bin of every box as a one-bin tap sum of its position map.

    taps(boxes, window) gives the per-axis rows / columns and weights of every bin
    (at most ``window`` per axis and bin).
    """
    n, h, w, c = x.shape
    out_h, out_w = output_size
    maps = position_sensitive.position_maps(x, output_size)
    itemsize = x.dtype.itemsize

    def pool(boxes: jax.Array, batch_indices: jax.Array) -> jax.Array:
        k = boxes.shape[0]
        (ry, wy), (rx, wx) = taps(boxes, window)
        in_range, image = guards.images_in_range(batch_indices, n)
        wy = jnp.where(in_range[:, None, None], wy, 0.0)

        def per_bin(a: jax.Array, axis: int) -> jax.Array:
            """(K, P, T) or (K, Q, T) to one row per bin of every box: (K * out_h * out_w, 1, T)."""
            a = jnp.expand_dims(a, axis)
            return jnp.broadcast_to(a, (k, out_h, out_w, a.shape[-1])).reshape(k * out_h * out_w, 1, -1)

        images = position_sensitive.bin_maps(image, output_size).reshape(-1)
        out = tap_sum(maps, images, per_bin(ry, 2), per_bin(wy, 2), per_bin(rx, 1), per_bin(wx, 1))
        return out.reshape(k, out_h, out_w, -1)

    # Per box: the backward pass's scatter update of one row tap (all its column taps).
    per_box = max(
        2 * out_h * out_w * window * (c // (out_h * out_w)) * itemsize, 16 * (out_h * h + out_w * w) * itemsize
    )
    return guards.map_box_chunks(pool, boxes, batch_indices, per_box)
