"""RoIAlign in plain jax.numpy: the differentiable reference every other path must match.

Inputs are already canonical (see ``jax_roialign.canonical``): features (N, H, W, C),
boxes (K, 4) [x1, y1, x2, y2] in input-image coordinates, batch_indices (K,) int32.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards, sampling
from jax_roialign.core.bins import box_bins, compute_dtype
from jax_roialign.xla.tap_sum import tap_sum


def roi_align(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """RoIAlign of canonical inputs; returns (K, out_h, out_w, C) in features' dtype.

    Contract (conventions.md section 1), with ``value(k, y, x)`` the bilinear read of
    image ``batch_indices[k]`` and ``y(p, i)``, ``x(q, j)`` the sample coordinates::

        avg:        out[k, p, q] = sum_{i, j} value(k, y(p, i), x(q, j)) / max(gh * gw, 1)
        max:        out[k, p, q] = max_{i, j} value(k, y(p, i), x(q, j))
        corner_max: the max over samples of the largest of the four weighted corner
                    terms (onnxruntime)

    Accumulation is in float32 (float64 for float64 features).  A box whose batch
    index lies outside [0, N) reads nothing and yields zeros; a box with a NaN or
    infinite coordinate reads nothing, yields NaN and passes no gradient; a bin with
    no samples (adaptive grid of a zero-size aligned box) yields zero in every mode.
    """
    cdt = compute_dtype(features.dtype)
    x = features.astype(cdt)
    boxes, batch_indices, finite = guards.isolate_nonfinite_boxes(boxes.astype(cdt), batch_indices)
    if spec.mode == "avg":
        out = _avg_pool(x, boxes, batch_indices, spec)
    else:
        _, _, _, c = x.shape
        out_h, out_w = spec.output_size
        per_box = 16 * out_h * out_w * c * x.dtype.itemsize  # running max, argmax, taps, indices
        out = guards.map_box_chunks(functools.partial(_max_pool, x, spec=spec), boxes, batch_indices, per_box)
    return guards.mark_nonfinite(out, finite).astype(features.dtype)


# Rows (and columns) per bin that the windowed avg path gathers, smallest first; boxes
# with larger bins use the dense form.  One static shape per tier keeps jit happy.
WINDOW_TIERS: tuple[int, ...] = (8, 16)


def image_one_hot(batch_indices: jax.Array, n: int, dtype: jnp.dtype) -> jax.Array:
    """(K, N) one-hot of each box's image; all-zero for an index outside [0, N)."""
    return (batch_indices[:, None] == jnp.arange(n)).astype(dtype)


def _avg_pool(x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """Separable avg RoIAlign: out[k] = Wy[k] @ X[b_k] @ Wx[k]^T, per channel.

    Each bin's weights are nonzero on a few rows and columns, so a bin is computed from
    the taps it reads: its 2 * sampling_ratio neighbours per axis for a fixed grid, or
    a window of consecutive rows/columns (the smallest tier of WINDOW_TIERS that holds
    every bin of the call, picked at run time by lax.switch) for an adaptive grid.
    Bins larger than the largest tier use the dense (out x map) weights.  All forms are
    exact; none ever holds a sample grid.  Each form runs over chunks of boxes sized
    for its own working set (guards.map_box_chunks).
    """
    n, h, w, c = x.shape
    out_h, out_w = spec.output_size
    itemsize = x.dtype.itemsize
    # Working set per box: one row tap's scatter update in the backward pass (the
    # forward pass holds only its output) plus the weight-building temporaries.
    weights_bytes = 16 * (out_h * h + out_w * w) * itemsize

    def tap_bytes(taps: int) -> int:
        return max(2 * out_h * out_w * taps * c * itemsize, weights_bytes)

    if spec.sampling_ratio > 0:
        taps = functools.partial(sampling.fixed_grid_taps, grid=spec.sampling_ratio)
        pool = functools.partial(_pool_taps, x, spec=spec, taps=taps)
        return guards.map_box_chunks(pool, boxes, batch_indices, tap_bytes(2 * spec.sampling_ratio))

    def windowed(window: int) -> Callable[[], jax.Array]:
        if window >= max(h, w):
            # The dense form and its gradient hold a few (out x map x C) intermediates.
            pool = functools.partial(_pool_dense, x, spec=spec)
            per_box = max(4 * max(out_h * w, out_w * h) * c * itemsize, weights_bytes)
        else:
            taps = functools.partial(sampling.adaptive_grid_taps, window=window)
            pool = functools.partial(_pool_taps, x, spec=spec, taps=taps)
            per_box = tap_bytes(window)
        return lambda: guards.map_box_chunks(pool, boxes, batch_indices, per_box)

    tiers = [t for t in WINDOW_TIERS if t < max(h, w)] + [max(h, w)]
    by, bx = box_bins(boxes, spec)
    extent = sampling.adaptive_row_extent
    need = jnp.maximum(
        jnp.max(jax.vmap(functools.partial(extent, pooled=out_h, length=h))(by), initial=0.0),
        jnp.max(jax.vmap(functools.partial(extent, pooled=out_w, length=w))(bx), initial=0.0),
    )
    tier = jnp.sum(need > jnp.asarray(tiers[:-1], need.dtype)).astype(jnp.int32)
    return jax.lax.switch(tier, [windowed(t) for t in tiers])


def _axis_taps(boxes: jax.Array, spec: RoIAlignSpec, taps: Callable, h: int, w: int):
    """((rows, weights) along y, (columns, weights) along x) of every box, from taps(bins, pooled, length)."""
    out_h, out_w = spec.output_size
    by, bx = box_bins(boxes, spec)
    ty = jax.vmap(functools.partial(taps, pooled=out_h, length=h))(by)
    tx = jax.vmap(functools.partial(taps, pooled=out_w, length=w))(bx)
    return ty, tx


def _pool_taps(x, boxes, batch_indices, spec, taps):
    ty, tx = _axis_taps(boxes, spec, taps, x.shape[1], x.shape[2])
    return _gather_taps(x, batch_indices, ty, tx)


def _pool_dense(x, boxes, batch_indices, spec):
    taps = functools.partial(sampling.adaptive_grid_taps, window=max(x.shape[1], x.shape[2]))
    (_, wy), (_, wx) = _axis_taps(boxes, spec, taps, x.shape[1], x.shape[2])
    return _dense_contract(x, batch_indices, wy, wx)


def _gather_taps(
    x: jax.Array, batch_indices: jax.Array, ty: tuple[jax.Array, jax.Array], tx: tuple[jax.Array, jax.Array]
) -> jax.Array:
    """out[k, p, q] = sum_{a, b} wy[k, p, a] * wx[k, q, b] * X[b_k, ry[k, p, a], rx[k, q, b]].

    A box whose batch index lies outside [0, N) reads image 0 with zero weights.
    """
    (ry, wy), (rx, wx) = ty, tx
    in_range, image = guards.images_in_range(batch_indices, x.shape[0])
    return tap_sum(x, image, ry, jnp.where(in_range[:, None, None], wy, 0.0), rx, wx)


def _dense_contract(x: jax.Array, batch_indices: jax.Array, wy: jax.Array, wx: jax.Array) -> jax.Array:
    """out[k] = Wy[k] @ X[b_k] @ Wx[k]^T with dense (K, out, map) weights.

    The image is selected by a one-hot contraction (never a gather of K feature maps),
    and the axis contracted first is the one that gives the smaller intermediate.
    """
    n, h, w, _ = x.shape
    out_h, out_w = wy.shape[1], wx.shape[1]
    pick = image_one_hot(batch_indices, n, x.dtype)
    dot = functools.partial(jnp.einsum, precision=jax.lax.Precision.HIGHEST)
    # Two-operand contractions in a fixed order: weights and image choice first, so
    # nothing of size K x map is ever formed.
    if out_h * w <= out_w * h:
        rows = dot("kpnh,nhwc->kpwc", jnp.einsum("kph,kn->kpnh", wy, pick), x)
        return dot("kpwc,kqw->kpqc", rows, wx)
    cols = dot("kqnw,nhwc->kqhc", jnp.einsum("kqw,kn->kqnw", wx, pick), x)
    return dot("kqhc,kph->kpqc", cols, wy)


def _max_pool(x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """Max RoIAlign ("max": interpolated values, "corner_max": onnxruntime's corner terms).

    A loop over the samples of every bin keeps the running max and the index of the
    first sample that attains it (row-major, like the frameworks); its trip count is
    the largest grid among the boxes, so adaptive grids are exact with no cap and
    memory stays at the output's size.  The result is then re-read at the winning
    sample, which makes it differentiable in the features and the boxes exactly as
    the frameworks' argmax backward is, without differentiating through the loop.
    """
    n, h, w, c = x.shape
    out_h, out_w = spec.output_size
    k = boxes.shape[0]
    corner = spec.mode == "corner_max"
    dtype = x.dtype

    def geometry(boxes):
        """(y bins, x bins, samples per bin), broadcastable against the output."""
        by, bx = box_bins(boxes, spec)
        n_samples = (jnp.maximum(by.grid, 0.0) * jnp.maximum(bx.grid, 0.0)).astype(jnp.int32)
        # A bin without samples computes with a dummy grid of 1 (finite values and
        # gradients) and is masked out through n_samples.
        by, bx = (b._replace(grid=jnp.maximum(b.grid, 1.0)) for b in (by, bx))
        return _expand(by), _expand(bx), n_samples[:, None, None, None]

    p_y = jnp.arange(out_h, dtype=dtype)[None, :, None, None]
    p_x = jnp.arange(out_w, dtype=dtype)[None, None, :, None]
    chan = jnp.arange(c)[None, None, None, :]
    in_range, image = guards.images_in_range(batch_indices, n)
    image = image[:, None, None, None]

    def value_at(x, by, bx, t):
        """Value of sample t (int, row-major in the bin's grid) of every output element."""
        # Integer division: a float t / grid may round below an integer under jit.
        grid_x = bx.grid.astype(jnp.int32)
        iy = jax.lax.div(t, grid_x).astype(dtype)
        ix = jax.lax.rem(t, grid_x).astype(dtype)
        ty = sampling.bilinear_taps(sampling.sample_coordinate(by, p_y, iy), h)
        tx = sampling.bilinear_taps(sampling.sample_coordinate(bx, p_x, ix), w)
        terms = [
            (ty.w_lo * tx.w_lo) * x[image, ty.lo, tx.lo, chan],
            (ty.w_lo * tx.w_hi) * x[image, ty.lo, tx.hi, chan],
            (ty.w_hi * tx.w_lo) * x[image, ty.hi, tx.lo, chan],
            (ty.w_hi * tx.w_hi) * x[image, ty.hi, tx.hi, chan],
        ]
        if corner:
            return jnp.maximum(jnp.maximum(jnp.maximum(terms[0], terms[1]), terms[2]), terms[3])
        return terms[0] + terms[1] + terms[2] + terms[3]

    # Search for the winning sample without tracking gradients.
    xs, (by_s, bx_s, n_samples) = jax.lax.stop_gradient((x, geometry(boxes)))
    if spec.sampling_ratio > 0:
        trips = spec.sampling_ratio**2
    else:
        trips = jnp.max(n_samples, initial=0) if k else 0

    def body(t, carry):
        best, arg = carry
        v = value_at(xs, by_s, bx_s, jnp.full((k, 1, 1, 1), t, jnp.int32))
        take = (t < n_samples) & ((t == 0) | (v > best))
        return jnp.where(take, v, best), jnp.where(take, t, arg)

    init = (jnp.zeros((k, out_h, out_w, c), dtype), jnp.full((k, out_h, out_w, c), -1, jnp.int32))
    _, arg = jax.lax.fori_loop(0, trips, body, init)

    by, bx, _ = geometry(boxes)
    found = (arg >= 0) & in_range[:, None, None, None]
    return jnp.where(found, value_at(x, by, bx, jnp.maximum(arg, 0)), 0.0)


def _expand(bins: sampling.AxisBins) -> sampling.AxisBins:
    """Bins with fields (K,) reshaped to (K, 1, 1, 1) to broadcast against outputs."""
    return sampling.AxisBins(*(a[:, None, None, None] for a in bins))
