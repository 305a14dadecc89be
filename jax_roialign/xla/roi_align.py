"""RoIAlign in plain jax.numpy: the differentiable reference every other path must match.

Inputs are already canonical (see ``jax_roialign.canonical``): features (N, H, W, C),
boxes (K, 4) [x1, y1, x2, y2] in input-image coordinates, batch_indices (K,) int32.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards, sampling
from jax_roialign.core.bins import box_bins, compute_dtype
from jax_roialign.xla.tap_sum import avg_pool


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
        in_range, image = guards.images_in_range(batch_indices, x.shape[0])
        out = avg_pool(x, boxes, image, in_range, spec)
    else:
        _, _, _, c = x.shape
        out_h, out_w = spec.output_size
        per_box = 16 * out_h * out_w * c * x.dtype.itemsize  # running max, argmax, taps, indices
        out = guards.map_box_chunks(functools.partial(_max_pool, x, spec=spec), boxes, batch_indices, per_box)
    return guards.mark_nonfinite(out, finite).astype(features.dtype)


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
