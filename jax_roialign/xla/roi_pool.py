"""RoIPool (Fast R-CNN: torchvision.ops.roi_pool, mmcv.ops.roi_pool) in plain jax.numpy.

Contract (conventions.md sections 2 and 7): bin (p, q) covers a rectangle of whole
cells, clipped to the map; the output is the max over the bin, 0 for an empty bin.
The gradient goes to the first argmax in row-major order, as in both frameworks.
The bins differ: torchvision rounds the scaled corners half away from zero and offsets
``[floor(p * bin_h), ceil((p + 1) * bin_h))`` by the rounded start; mmcv rounds
nothing, adds 1 to the far corner before scaling and floors / ceils
``p * bin_h + start``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jax_roialign.core.bins import compute_dtype
from jax_roialign.core.guards import images_in_range, isolate_nonfinite_boxes, map_box_chunks, mark_nonfinite
from jax_roialign.core.sampling import divide, round_half_away_from_zero


def _bin_edges(lo: jax.Array, hi: jax.Array, scale: float, pooled: int, length: int) -> tuple[jax.Array, jax.Array]:
    """(first, end) cells of every bin along one axis, each (K, pooled) int32, clipped to [0, length]."""
    start = round_half_away_from_zero(lo * scale)
    end = round_half_away_from_zero(hi * scale)
    size = jnp.maximum(end - start + 1.0, 1.0)
    bin_size = divide(size, pooled)
    p = jnp.arange(pooled, dtype=lo.dtype)
    first = jnp.floor(p * bin_size[:, None]) + start[:, None]
    last = jnp.ceil((p + 1.0) * bin_size[:, None]) + start[:, None]
    first, last = (jnp.clip(v, 0, length).astype(jnp.int32) for v in (first, last))
    return first, last


def _mmcv_bin_edges(
    lo: jax.Array, hi: jax.Array, scale: float, pooled: int, length: int
) -> tuple[jax.Array, jax.Array]:
    """mmcv's (first, end) cells of every bin along one axis, each (K, pooled) int32, clipped to [0, length].

    No rounding: start = lo * scale, size = (hi + 1) * scale - start; a box of size <= 0
    is skipped (every bin empty).  The edges go through float32 before floor / ceil, as
    mmcv's floorf / ceilf do for float64 inputs.
    """
    start = lo * scale
    size = (hi + 1.0) * scale - start
    bin_size = divide(size, pooled)
    p = jnp.arange(pooled, dtype=lo.dtype)
    first = jnp.floor((p * bin_size[:, None] + start[:, None]).astype(jnp.float32))
    last = jnp.ceil(((p + 1.0) * bin_size[:, None] + start[:, None]).astype(jnp.float32))
    first, last = (jnp.clip(v, 0, length).astype(jnp.int32) for v in (first, last))
    skipped = (size <= 0)[:, None]
    return jnp.where(skipped, 0, first), jnp.where(skipped, 0, last)


BIN_EDGES = {"torchvision": _bin_edges, "mmcv": _mmcv_bin_edges}


def roi_pool(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    output_size: tuple[int, int],
    spatial_scale: float,
    corners: str = "torchvision",
) -> jax.Array:
    """RoIPool of canonical inputs: (K, out_h, out_w, C) in features' dtype.

    corners: "torchvision" or "mmcv", whose bins to pool (see the module docstring).
    A loop visits the cells of every bin in row-major order (trip count: the largest
    bin area among the boxes) and keeps the first argmax; the output is then read at
    the argmax, so gradients reach exactly that element.  A box whose batch index
    lies outside [0, N) yields zeros; one with a non-finite coordinate yields NaN.
    """
    boxes = jax.lax.stop_gradient(boxes.astype(compute_dtype(features.dtype)))
    boxes, batch_indices, finite = isolate_nonfinite_boxes(boxes, batch_indices)
    per_box = 12 * output_size[0] * output_size[1] * features.shape[3] * 4  # max, argmax, indices
    pool = functools.partial(
        _pool_chunk, features, output_size=output_size, spatial_scale=spatial_scale, edges=BIN_EDGES[corners]
    )
    return mark_nonfinite(map_box_chunks(pool, boxes, batch_indices, per_box), finite)


def _pool_chunk(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    output_size: tuple[int, int],
    spatial_scale: float,
    edges: Callable,
) -> jax.Array:
    """roi_pool of one chunk of finite boxes, with the bins of edges(lo, hi, scale, pooled, length)."""
    n, h, w, c = features.shape
    k = boxes.shape[0]
    out_h, out_w = output_size
    y0, y1 = edges(boxes[:, 1], boxes[:, 3], spatial_scale, out_h, h)
    x0, x1 = edges(boxes[:, 0], boxes[:, 2], spatial_scale, out_w, w)
    y0, y1 = y0[:, :, None, None], y1[:, :, None, None]
    x0, x1 = x0[:, None, :, None], x1[:, None, :, None]
    # The widest bin of each box sets its row-major stride.
    stride = jnp.maximum(jnp.max(x1 - x0, axis=(1, 2, 3), keepdims=True), 1)
    tall = jnp.max(y1 - y0, axis=(1, 2, 3), keepdims=True)
    trips = jnp.max(stride * tall, initial=0) if k else 0

    in_range, image = images_in_range(batch_indices, n)
    image = image[:, None, None, None]
    chan = jnp.arange(c)[None, None, None, :]

    def cell(t):
        row, col = y0 + t // stride, x0 + t % stride
        inside = (row < y1) & (col < x1)
        return row, col, inside

    xs = jax.lax.stop_gradient(features)

    def body(t, carry):
        best, arg = carry
        row, col, inside = cell(t)
        v = xs[image, jnp.minimum(row, h - 1), jnp.minimum(col, w - 1), chan]
        take = inside & ((arg < 0) | (v > best))
        return jnp.where(take, v, best), jnp.where(take, t, arg)

    init = (jnp.zeros((k, out_h, out_w, c), features.dtype), jnp.full((k, out_h, out_w, c), -1, jnp.int32))
    _, arg = jax.lax.fori_loop(0, trips, body, init)
    row, col, _ = cell(jnp.maximum(arg, 0))
    found = (arg >= 0) & in_range[:, None, None, None]
    return jnp.where(found, features[image, row, col, chan], 0)
