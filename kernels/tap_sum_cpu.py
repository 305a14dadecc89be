"""avg RoIAlign on the CPU kernels (``cpu/tap_sum.cc``), differentiable under every transformation.

Contract: that of ``jax_roialign.xla.roi_align`` for ``mode="avg"``.  The op is the
tap sum of the XLA path (``docs/conventions.md`` section 1)::

    out[k, p, q] = sum_{a < ny[k, p], b < nx[k, q]} wy[k, p, a] * wx[k, q, b] * X[image_k, ry[k, p, a], rx[k, q, b]]

with the per-axis tables built here in plain JAX from the shared sampling code, so the
boxes' derivative is the chain rule through them.  Its three contractions (the read, a
deterministic scatter-add with one writer per band of feature rows, and the tables'
cotangents, the boxes' gradient) are a ``cpu_call`` family.

Unlike the XLA path, which reads adaptive grids in chunks of a fixed number of taps
with one term per chunk, every bin here reads exactly the rows and columns it touches
(``ny``, ``nx``): one call whatever the grid.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling
from jax_roialign.core.bins import box_bins

from .cpu_call import PORTABLE, Family, one_term_sum

# Tap pairs of at most this many per bin are unrolled (XLA fuses the reads into one pass);
# more (adaptive grids) loop up to the widest bin of the call.
_UNROLLED_PAIRS = 64


def _over_tap_pairs(body, init, ry, ny, rx, nx):
    """body(a, b, carry) over every pair of row tap a and column tap b, in order."""
    ty, tx = ry.shape[2], rx.shape[2]
    if ty * tx <= _UNROLLED_PAIRS:
        carry = init
        for a in range(ty):
            for b in range(tx):
                carry = body(a, b, carry)
        return carry
    mx = jnp.max(nx, initial=0)
    return jax.lax.fori_loop(0, jnp.max(ny, initial=0) * mx, lambda i, c: body(i // mx, i % mx, c), init)


def _tap_pair(a, b, ry, wy, ny, rx, wx, nx):
    """(wy, ry, wx, rx) of row tap a and column tap b of every bin, weights zero past a bin's taps."""
    wa = jnp.where(a < ny, jax.lax.dynamic_index_in_dim(wy, a, 2, keepdims=False), 0)
    wb = jnp.where(b < nx, jax.lax.dynamic_index_in_dim(wx, b, 2, keepdims=False), 0)
    ra = jax.lax.dynamic_index_in_dim(ry, a, 2, keepdims=False)
    rb = jax.lax.dynamic_index_in_dim(rx, b, 2, keepdims=False)
    return wa, ra, wb, rb


def _portable_read(x, image, ry, wy, ny, rx, wx, nx):
    """The Read kernel in plain JAX: one gather per tap pair."""

    def body(a, b, out):
        wa, ra, wb, rb = _tap_pair(a, b, ry, wy, ny, rx, wx, nx)
        value = x[image[:, None, None], ra[:, :, None], rb[:, None, :]]
        return out + wa[:, :, None, None] * wb[:, None, :, None] * value

    out = jnp.zeros((ry.shape[0], ry.shape[1], rx.shape[1], x.shape[-1]), x.dtype)
    return _over_tap_pairs(body, out, ry, ny, rx, nx)


def _portable_features_transpose(ct, image, ry, wy, ny, rx, wx, nx, *, shape):
    """The FeaturesTranspose kernel in plain JAX: one scatter-add per tap pair."""

    def body(a, b, dx):
        wa, ra, wb, rb = _tap_pair(a, b, ry, wy, ny, rx, wx, nx)
        update = wa[:, :, None, None] * wb[:, None, :, None] * ct
        return dx.at[image[:, None, None], ra[:, :, None], rb[:, None, :]].add(update)

    return _over_tap_pairs(body, jnp.zeros(shape, ct.dtype), ry, ny, rx, nx)


def _portable_weights_transpose(ct, x, image, ry, wy, ny, rx, wx, nx):
    """The WeightsTranspose kernel in plain JAX: per tap pair, a gather reduced over the channels."""

    def body(a, b, grads):
        dwy, dwx = grads
        wa, ra, wb, rb = _tap_pair(a, b, ry, wy, ny, rx, wx, nx)
        d = jnp.sum(ct * x[image[:, None, None], ra[:, :, None], rb[:, None, :]], axis=-1)
        dwy = dwy.at[:, :, a].add(jnp.where(a < ny, jnp.sum(d * wb[:, None, :], axis=2), 0))
        dwx = dwx.at[:, :, b].add(jnp.where(b < nx, jnp.sum(d * wa[:, :, None], axis=1), 0))
        return dwy, dwx

    return _over_tap_pairs(body, (jnp.zeros_like(wy), jnp.zeros_like(wx)), ry, ny, rx, nx)


def _order(weights, consts) -> list[jax.Array]:
    (wy, wx), (image, ry, ny, rx, nx) = weights, consts
    return [image, ry, wy, ny, rx, wx, nx]


PORTABLE["Read"] = lambda *args, results: [_portable_read(*args)]
PORTABLE["FeaturesTranspose"] = lambda *args, results: [_portable_features_transpose(*args, shape=results[0].shape)]
PORTABLE["WeightsTranspose"] = lambda *args, results: list(_portable_weights_transpose(*args))
TAP_SUM = Family("", _order)


def _axis_tables(bins: sampling.AxisBins, pooled: int, length: int, sampling_ratio: int):
    """(rows (K, pooled, T) int32, weights (K, pooled, T), taps used (K, pooled) int32) of one axis.

    Fixed grids: the two neighbours of each sample (T = 2 * grid), those on the same row
    merged (``sampling.merge_equal_taps``: fewer taps per bin, every pass faster).
    Adaptive grids: every row a bin touches, from its first one (T = length).
    """
    if sampling_ratio > 0:
        taps = functools.partial(sampling.fixed_grid_taps, pooled=pooled, grid=sampling_ratio, length=length)
        rows, weights = jax.vmap(taps)(bins)
        return sampling.merge_equal_taps(rows, weights, length)
    first, count = jax.vmap(functools.partial(sampling.rows_read, pooled=pooled, length=length))(
        jax.lax.stop_gradient(bins)
    )
    taps = functools.partial(sampling.adaptive_grid_taps, pooled=pooled, length=length, window=length)
    rows, weights = jax.vmap(taps)(bins, start=first)
    return rows, weights, count.astype(jnp.int32)


def avg_pool(x: jax.Array, boxes: jax.Array, image: jax.Array, in_range: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """avg RoIAlign (K, out_h, out_w, C) of x (N, H, W, C) at finite boxes (K, 4) on the CPU kernels.

    The contract of ``jax_roialign.xla.tap_sum.avg_pool``: ``image`` in [0, N); boxes
    with ``in_range`` False read nothing (zeros).
    """
    _, h, w, _ = x.shape
    out_h, out_w = spec.output_size
    by, bx = box_bins(boxes, spec)
    ry, wy, ny = _axis_tables(by, out_h, h, spec.sampling_ratio)
    rx, wx, nx = _axis_tables(bx, out_w, w, spec.sampling_ratio)
    ny = jnp.where(in_range[:, None], ny, 0)  # a box of no image (or a non-finite one) reads nothing
    return one_term_sum(TAP_SUM, x, (wy, wx), (image.astype(jnp.int32), ry, ny, rx, nx))
