"""max RoIAlign's samples and their search, shared by the XLA path and the CPU kernels.

Sample ``t`` of a bin is row ``t // grid_x``, column ``t % grid_x`` of its sampling grid
(row-major, the frameworks' order); its value is the combination (``core.corners``) of
its four weighted corner terms.  :func:`search` finds each output element's value and
first winning sample; both backends differentiate through the winners it returns.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling
from jax_roialign.core.bins import box_bins
from jax_roialign.core.corners import combine_terms, corners, encode_shares


def sample_geometry(boxes: jax.Array, spec: RoIAlignSpec):
    """(y bins, x bins) with fields (K,), grids at least 1, and samples per bin (K,) int32."""
    by, bx = box_bins(boxes, spec)
    n_samples = (jnp.maximum(by.grid, 0.0) * jnp.maximum(bx.grid, 0.0)).astype(jnp.int32)
    # A bin without samples computes with a dummy grid of 1 (finite values and gradients)
    # and is skipped through n_samples.
    by, bx = (b._replace(grid=jax.lax.stop_gradient(jnp.maximum(b.grid, 1.0))) for b in (by, bx))
    return by, bx, n_samples


def sample_corners(x_shape, by: sampling.AxisBins, bx: sampling.AxisBins, t: jax.Array, output_size):
    """The four (row, column, weight) corners of sample t of every bin, each (K, P, Q) (weights (K, P, Q, 1))."""
    _, h, w, _ = x_shape
    out_h, out_w = output_size
    dtype = by.start.dtype
    # Integer division: a float t / grid may round below an integer under jit.
    grid_x = bx.grid.astype(jnp.int32)[:, None, None]
    t = jnp.asarray(t, jnp.int32)
    iy = jax.lax.div(t, grid_x).astype(dtype)
    ix = jax.lax.rem(t, grid_x).astype(dtype)
    p = jnp.arange(out_h, dtype=dtype)[None, :, None]
    q = jnp.arange(out_w, dtype=dtype)[None, None, :]
    expand = functools.partial(jax.tree.map, lambda a: a[:, None, None])
    ty = sampling.bilinear_taps(sampling.sample_coordinate(expand(by), p, iy), h)
    tx = sampling.bilinear_taps(sampling.sample_coordinate(expand(bx), q, ix), w)
    return [(r, c, weight[..., None]) for r, c, weight in corners(ty, tx)]


# The largest fixed grid whose sample indices, and -1 for none, fit int8 (11 x 11 = 121).
INT8_GRID = 11


def winner_dtype(spec: RoIAlignSpec) -> jnp.dtype:
    """The winners' dtype: int8 on fixed grids of at most ``INT8_GRID`` samples a side, else
    int32.  The winners are as large as the output and the backward reads them once: int8
    makes them a quarter of its size."""
    return jnp.dtype(jnp.int8 if 0 < spec.sampling_ratio <= INT8_GRID else jnp.int32)


def search(x, image, by, bx, n_samples, spec: RoIAlignSpec):
    """(value, first winning sample (-1: none; ``winner_dtype(spec)``), corner_max share code
    (int32; a 0-d zero for "max")) per output element."""
    k = image.shape[0]
    out_h, out_w = spec.output_size
    corner = spec.mode == "corner_max"
    shape = (k, out_h, out_w, x.shape[-1])
    trips = spec.sampling_ratio**2 if spec.sampling_ratio > 0 else jnp.max(n_samples, initial=0)
    allowed = n_samples[:, None, None, None]

    def body(t, carry):
        best, arg, code = carry
        terms = [
            weight * x[image[:, None, None], r, c]
            for r, c, weight in sample_corners(x.shape, by, bx, t, spec.output_size)
        ]
        value = combine_terms(terms, corner)
        take = (t < allowed) & ((t == 0) | (value > best))
        code = jnp.where(take, encode_shares(terms), code) if corner else code
        return jnp.where(take, value, best), jnp.where(take, t.astype(arg.dtype), arg), code

    init = (
        jnp.zeros(shape, x.dtype),
        jnp.full(shape, -1, winner_dtype(spec)),
        jnp.zeros(shape if corner else (), jnp.int32),
    )
    if isinstance(trips, int):  # a fixed grid: unrolled, so that XLA fuses the whole search into one pass
        carry = init
        for t in range(trips):
            carry = body(jnp.int32(t), carry)
        return carry
    return jax.lax.fori_loop(0, trips, body, init)


def pooled_max(x: jax.Array, boxes: jax.Array, image: jax.Array, in_range: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """The max modes' value (K, P, Q, C): the search's, 0 where no sample won (no samples, or no image)."""
    by, bx, n_samples = sample_geometry(boxes, spec)
    value, arg, _ = search(x, image, by, bx, jnp.where(in_range, n_samples, 0), spec)
    return jnp.where(arg >= 0, value, 0.0)
