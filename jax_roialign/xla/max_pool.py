"""max and corner_max RoIAlign in plain jax.numpy: a search, and a linear map for the derivatives.

The forward value is a search: a loop over the samples of every bin keeps the running
max and the first sample (row-major, as the frameworks do) that attains it, per
channel.  Its trip count is the largest grid among the boxes, so adaptive grids are
exact with no cap, and memory stays at the output's size.

For fixed winners the op is linear in the features: output element (k, p, q, c) reads
its winning sample's four corners of channel c (weighted by the bilinear weights, and for
corner_max by the corner's share of the cotangent, as JAX's tie rule for ``jnp.maximum``
gives).  That map is a ``core.loop_sum`` over the samples, each term reading one
sample's corners for every bin (one gather per corner, whole channel rows) masked to the
elements it wins; its transpose is a scatter-add per corner with whole-row updates, and
its derivative in the box coordinates moves the samples.  A ``custom_jvp`` joins the two:
the search gives the value, the linear map every derivative, so inference never
evaluates the map and the winners are never differentiated (they are piecewise constant).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling
from jax_roialign.core.corners import decode_shares
from jax_roialign.core.loop_sum import Term, loop_sum
from jax_roialign.core.winners import (
    derivative_winners,
    pooled_max,
    sample_corners,
    sample_geometry,
    sample_trips,
)


@dataclasses.dataclass(frozen=True)
class _WinnerRead:
    """Term t of the linear map: sample t's corners read where it is the winner (a loop_sum term)."""

    spec: RoIAlignSpec
    x_shape: tuple[int, ...]

    def __call__(self, t, x, bins, consts):
        (y_start, y_bin, x_start, x_bin), (image, arg, code, y_grid, x_grid) = bins, consts
        by = sampling.AxisBins(y_start, y_bin, y_grid)
        bx = sampling.AxisBins(x_start, x_bin, x_grid)
        wins = arg == t
        shares = decode_shares(code, x.dtype) if self.spec.mode == "corner_max" else [None] * 4
        out = None
        for (r, c, weight), share in zip(
            sample_corners(self.x_shape, by, bx, t, self.spec.output_size), shares, strict=True
        ):
            weight = jnp.where(wins, weight if share is None else share * weight, 0.0)
            term = weight * x[image[:, None, None], r, c]
            out = term if out is None else out + term
        return out


@dataclasses.dataclass(frozen=True)
class _WinnerScatter:
    """Term t's transpose: one scatter-add of its four corners' whole-row updates."""

    spec: RoIAlignSpec
    x_shape: tuple[int, ...]

    def __call__(self, t, ct, bins, consts, shapes):
        (y_start, y_bin, x_start, x_bin), (image, arg, code, y_grid, x_grid) = bins, consts
        by = sampling.AxisBins(y_start, y_bin, y_grid)
        bx = sampling.AxisBins(x_start, x_bin, x_grid)
        wins = arg == t
        shares = decode_shares(code, ct.dtype) if self.spec.mode == "corner_max" else [None] * 4
        taps = list(zip(sample_corners(self.x_shape, by, bx, t, self.spec.output_size), shares, strict=True))
        rows = jnp.stack([r for (r, _, _), _ in taps], axis=3)
        cols = jnp.stack([c for (_, c, _), _ in taps], axis=3)
        updates = jnp.stack([jnp.where(wins, (w if s is None else s * w) * ct, 0.0) for (_, _, w), s in taps], axis=3)
        dx = jnp.zeros(shapes.shape, shapes.dtype)
        return dx.at[image[:, None, None, None], rows, cols].add(updates)


def _linear_map(x, bins, consts, trips, spec: RoIAlignSpec):
    """The winners' read of x: linear in x, differentiable in the bins' start and size."""
    term = Term(_WinnerRead(spec, x.shape), _WinnerScatter(spec, x.shape))
    return loop_sum(term, trips, x, bins, consts)


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def _max_pool(x, boxes, image, in_range, spec: RoIAlignSpec):
    return pooled_max(x, boxes, image, in_range, spec)


@functools.partial(_max_pool.defjvp, symbolic_zeros=True)
def _max_pool_jvp(spec, primals, tangents):
    x, boxes, image, in_range = primals
    x_dot, boxes_dot, _, _ = tangents
    out = _max_pool(x, boxes, image, in_range, spec)
    by, bx, n_samples = sample_geometry(boxes, spec)
    n_samples = jnp.where(in_range, n_samples, 0)
    fixed = jax.lax.stop_gradient
    arg, code = derivative_winners(x, image, fixed(by), fixed(bx), n_samples, spec)
    trips = jnp.int32(sample_trips(n_samples, spec))
    consts = (image, arg, code, by.grid, bx.grid)
    bins = (by.start, by.bin_size, bx.start, bx.bin_size)
    parts = []
    if not isinstance(x_dot, jax.custom_derivatives.SymbolicZero):
        parts.append(_linear_map(x_dot, bins, consts, trips, spec))
    if not isinstance(boxes_dot, jax.custom_derivatives.SymbolicZero):
        by_dot, bx_dot, _ = jax.jvp(lambda b: sample_geometry(b, spec), (boxes,), (boxes_dot,))[1]
        bins_dot = (by_dot.start, by_dot.bin_size, bx_dot.start, bx_dot.bin_size)
        _, tangent = jax.jvp(lambda b: _linear_map(x, b, consts, trips, spec), (bins,), (bins_dot,))
        parts.append(tangent)
    return out, functools.reduce(jnp.add, parts)


def max_pool(x: jax.Array, boxes: jax.Array, image: jax.Array, in_range: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """max / corner_max RoIAlign (K, out_h, out_w, C) of x (N, H, W, C) at finite boxes (K, 4), in x's dtype.

    ``image`` (K,) must lie in [0, N); boxes with ``in_range`` False give zeros.  A bin
    without samples gives 0.  Gradients: the frameworks' argmax rule (the first winning
    sample's taps, row-major; corner_max ties split as JAX's ``jnp.maximum``), for the
    features to any order and the boxes, under every transformation.
    """
    return _max_pool(x, boxes, image, in_range, spec)
