"""The separable tap sum behind the avg paths, with a hand-written, deterministic backward pass.

``tap_sum`` reads, for every output element, a small static set of (row, column) taps
of one image and sums them with separable weights.  Written as one gather per tap,
XLA fuses the whole sum into a single loop over the output (no gathered intermediate
is stored); autodiff of that form would produce one scatter per tap and re-gather the
features for the weights' cotangents, so the backward pass is written out: one
scatter per row tap, and cotangents for the weights only when they are perturbed
(a detached proposal box costs nothing extra).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero


def _row_tap(t: jax.Array, a: jax.Array) -> jax.Array:
    """t[:, :, a] for a traced tap index a."""
    return jax.lax.dynamic_index_in_dim(t, a, axis=2, keepdims=False)


def _x_contracted_read(x, image, rows, rx, wx) -> jax.Array:
    """(K, P, Q, C): sum_b wx[k, q, b] * X[image[k], rows[k, p], rx[k, q, b]], b in index order."""
    out = jnp.zeros(rows.shape + rx.shape[1:2] + x.shape[-1:], x.dtype)
    for b in range(rx.shape[2]):
        out = out + wx[:, None, :, b, None] * x[image[:, None, None], rows[:, :, None], rx[:, None, :, b]]
    return out


def _y_contracted_read(x, image, ry, wy, cols) -> jax.Array:
    """(K, P, Q, C): sum_a wy[k, p, a] * X[image[k], ry[k, p, a], cols[k, q]], a in index order."""
    out = jnp.zeros(ry.shape[:2] + cols.shape[1:2] + x.shape[-1:], x.dtype)
    for a in range(ry.shape[2]):
        out = out + wy[:, :, a, None, None] * x[image[:, None, None], ry[:, :, a, None], cols[:, None, :]]
    return out


@jax.custom_vjp
def tap_sum(x: jax.Array, image: jax.Array, ry: jax.Array, wy: jax.Array, rx: jax.Array, wx: jax.Array) -> jax.Array:
    """Separable tap sum; returns (K, P, Q, C) in x's dtype.

    Equivalent plain JAX::

        out[k, p, q] = sum_{a, b} wy[k, p, a] * wx[k, q, b] * x[image[k], ry[k, p, a], rx[k, q, b]]

    Args:
      x: (N, H, W, C) features in the accumulation dtype.
      image: (K,) int, each in [0, N) (callers redirect invalid boxes and zero their weights).
      ry, wy: (K, P, Ty) int rows in [0, H) and their weights.
      rx, wx: (K, Q, Tx) int columns in [0, W) and their weights.

    Sums run over b inside a, in index order, in x's dtype.  The gradient w.r.t. x is a
    scatter per row tap in the same fixed order (deterministic); the integer arguments
    have none.
    """

    def body(a, out):
        return out + _row_tap(wy, a)[:, :, None, None] * _x_contracted_read(x, image, _row_tap(ry, a), rx, wx)

    # The first row tap starts the sum (rather than a zeros carry), so that under
    # shard_map the carry is device-varying like the features.
    first = body(0, jnp.zeros((), x.dtype))
    return jax.lax.fori_loop(1, ry.shape[2], body, first)


def _tap_sum_fwd(x, image, ry, wy, rx, wx):
    values = [arg.value for arg in (x, image, ry, wy, rx, wx)]
    weights_perturbed = wy.perturbed or wx.perturbed
    # x is kept for the weights' cotangents only; None (an empty pytree) says "not needed".
    # x's shape travels as a zero-size array, which also holds symbolic (jax.export) sizes.
    shape_of_x = jnp.zeros((*x.value.shape[:-1], 0), x.value.dtype)
    return tap_sum(*values), (values[0] if weights_perturbed else None, shape_of_x, *values[1:])


def _tap_sum_bwd(residuals, g):
    x, shape_of_x, image, ry, wy, rx, wx = residuals
    if isinstance(g, SymbolicZero):
        return None, None, None, None, None, None  # None: a zero cotangent for every input
    x_shape = (*shape_of_x.shape[:-1], g.shape[-1])

    def scatter_row_tap(a, dx):
        # Every column tap of row tap a in one scatter: updates (K, P, Q, Tx, C).
        update = _row_tap(wy, a)[:, :, None, None, None] * wx[:, None, :, :, None] * g[:, :, :, None, :]
        index = (image[:, None, None, None], _row_tap(ry, a)[:, :, None, None], rx[:, None, :, :])
        return dx.at[index].add(update)

    dx = scatter_row_tap(0, jnp.zeros(x_shape, g.dtype))  # a varying carry under shard_map
    dx = jax.lax.fori_loop(1, ry.shape[2], scatter_row_tap, dx)
    if x is None:
        return dx, None, None, None, None, None

    # d out[k, p, q] / d wy[k, p, a] is the x-contracted read of row tap a; wx alike.
    def wy_cotangent(a):
        return jnp.sum(g * _x_contracted_read(x, image, _row_tap(ry, a), rx, wx), axis=(2, 3))

    def wx_cotangent(b):
        return jnp.sum(g * _y_contracted_read(x, image, ry, wy, _row_tap(rx, b)), axis=(1, 3))

    dwy = jnp.moveaxis(jax.lax.map(wy_cotangent, jnp.arange(ry.shape[2])), 0, 2)
    dwx = jnp.moveaxis(jax.lax.map(wx_cotangent, jnp.arange(rx.shape[2])), 0, 2)
    return dx, None, None, dwy, None, dwx


tap_sum.defvjp(_tap_sum_fwd, _tap_sum_bwd, symbolic_zeros=True)
