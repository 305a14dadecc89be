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


def _over_samples(trips, body, init):
    """body(t, carry) for t < trips: unrolled for a fixed grid (int trips), so that XLA fuses
    the whole loop into one pass; a fori_loop for an adaptive one."""
    if isinstance(trips, int):
        carry = init
        for t in range(trips):
            carry = body(jnp.int32(t), carry)
        return carry
    return jax.lax.fori_loop(0, trips, body, init)


def _sample_terms(x, image, by, bx, t, spec: RoIAlignSpec) -> list[jax.Array]:
    """The four weighted corner terms (K, P, Q, C) of sample t of every bin."""
    return [
        weight * x[image[:, None, None], r, c] for r, c, weight in sample_corners(x.shape, by, bx, t, spec.output_size)
    ]


def sample_trips(n_samples, spec: RoIAlignSpec):
    """Samples a loop over every bin's samples visits: the grid's (a Python int) on a fixed
    grid, else the largest bin's (a traced int32)."""
    return spec.sampling_ratio**2 if spec.sampling_ratio > 0 else jnp.max(n_samples, initial=0)


def search(x, image, by, bx, n_samples, spec: RoIAlignSpec):
    """(value, first winning sample (-1: none; ``winner_dtype(spec)``)) per output element."""
    shape = (image.shape[0], *spec.output_size, x.shape[-1])
    allowed = n_samples[:, None, None, None]

    def body(t, carry):
        best, arg = carry
        value = combine_terms(_sample_terms(x, image, by, bx, t, spec), spec.mode == "corner_max")
        take = (t < allowed) & ((t == 0) | (value > best))
        return jnp.where(take, value, best), jnp.where(take, t.astype(arg.dtype), arg)

    init = (jnp.zeros(shape, x.dtype), jnp.full(shape, -1, winner_dtype(spec)))
    return _over_samples(sample_trips(n_samples, spec), body, init)


def winner_shares(x, image, by, bx, n_samples, arg, spec: RoIAlignSpec) -> jax.Array:
    """corner_max: each element's share code (int32, ``core.corners.encode_shares``) of its
    winning sample ``arg`` (0 where none won)."""

    def body(t, code):
        return jnp.where(arg == t, encode_shares(_sample_terms(x, image, by, bx, t, spec)), code)

    return _over_samples(sample_trips(n_samples, spec), body, jnp.zeros(arg.shape, jnp.int32))


def derivative_winners(x, image, by, bx, n_samples, spec: RoIAlignSpec):
    """(arg, code) for the derivatives: :func:`search`'s winners and, for corner_max, their
    :func:`winner_shares` (else a 0-d int32 zero), each pass's gathers kept apart.

    Passes that share gathers give XLA a fusion with several outputs, which it splits,
    writing every sample corner's gather to memory (fpn-p3-sr2, max, the value and the
    features' gradient in one program: 43 ms against 3.4 + 11.4 for the two alone).  An
    optimization barrier on the features before each pass keeps it one fused pass.
    """
    fixed = jax.lax.optimization_barrier(jax.lax.stop_gradient(x))
    _, arg = search(fixed, image, by, bx, n_samples, spec)
    if spec.mode != "corner_max":
        return arg, jnp.int32(0)
    fixed, arg = jax.lax.optimization_barrier((jax.lax.stop_gradient(x), arg))
    return arg, winner_shares(fixed, image, by, bx, n_samples, arg, spec)


def pooled_max(x: jax.Array, boxes: jax.Array, image: jax.Array, in_range: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """The max modes' value (K, P, Q, C): the search's, 0 where no sample won (no samples, or no image)."""
    by, bx, n_samples = sample_geometry(boxes, spec)
    value, arg = search(x, image, by, bx, jnp.where(in_range, n_samples, 0), spec)
    return jnp.where(arg >= 0, value, 0.0)
