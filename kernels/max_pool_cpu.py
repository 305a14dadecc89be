"""max and corner_max RoIAlign on the CPU kernels (``cpu/winners.cc``), fixed sampling grids.

Contract: that of ``jax_roialign.xla.roi_align`` for the max modes with
``0 < sampling_ratio <= 11`` (the winners are int8; adaptive and larger grids raise
NotImplementedError, and the XLA path runs them).  As on the XLA path, the value is the
search of ``core.winners`` (one fused pass), and every derivative is the linear map of the
winning samples, here the ``Winner`` kernel family of ``cpu_call``: each element reads its
winning sample's four corners, weighted by per-axis tables of every sample's two
neighbours (``rows`` lo then hi, ``(K, P, 2 * grid)``) and, for corner_max, by the
corner's share of the cotangent.
Its transposes are a deterministic scatter-add (one writer per band of feature rows)
and the tables' cotangents, chained to the boxes in plain JAX.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling, winners
from jax_roialign.core.bins import box_bins
from jax_roialign.core.corners import decode_shares

from .cpu_call import PORTABLE, Family, one_term_sum


def _order(weights, consts) -> list[jax.Array]:
    (wy, wx), (image, arg, code, ry, rx) = weights, consts
    return [image, arg, code, ry, wy, rx, wx]


def _corners(arg, code, ry, wy, rx, wx, corner: bool):
    """(wins, share, rows (K, P), columns (K, Q), weight (K, P, Q, 1), a, b) of every sample's corners.

    a, b index the corner's row and column in the tables (lo block, then hi block).
    """
    grid = ry.shape[2] // 2
    shares = decode_shares(code, wy.dtype) if corner else [1.0] * 4
    for s in range(grid * grid):
        iy, ix = divmod(s, grid)
        wins = arg == s
        for i, (row_hi, col_hi) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            a, b = row_hi * grid + iy, col_hi * grid + ix
            weight = wy[:, :, a][:, :, None, None] * wx[:, :, b][:, None, :, None]
            yield wins, shares[i], ry[:, :, a], rx[:, :, b], weight, a, b


def _gather(x, image, rows, cols):
    return x[image[:, None, None], rows[:, :, None], cols[:, None, :]]


def _portable_read(x, image, arg, code, ry, wy, rx, wx, *, results, corner):
    out = jnp.zeros(results[0].shape, x.dtype)
    for wins, share, rows, cols, weight, _, _ in _corners(arg, code, ry, wy, rx, wx, corner):
        out = out + jnp.where(wins, share * weight * _gather(x, image, rows, cols), 0)
    return [out]


def _portable_features_transpose(ct, image, arg, code, ry, wy, rx, wx, *, results, corner):
    dx = jnp.zeros(results[0].shape, ct.dtype)
    for wins, share, rows, cols, weight, _, _ in _corners(arg, code, ry, wy, rx, wx, corner):
        update = jnp.where(wins, share * weight * ct, 0)
        dx = dx.at[image[:, None, None], rows[:, :, None], cols[:, None, :]].add(update)
    return [dx]


def _portable_weights_transpose(ct, x, image, arg, code, ry, wy, rx, wx, *, results, corner):
    dwy, dwx = jnp.zeros_like(wy), jnp.zeros_like(wx)
    for wins, share, rows, cols, _, a, b in _corners(arg, code, ry, wy, rx, wx, corner):
        d = jnp.sum(jnp.where(wins, share * ct * _gather(x, image, rows, cols), 0), axis=-1)
        dwy = dwy.at[:, :, a].add(jnp.sum(d * wx[:, None, :, b], axis=2))
        dwx = dwx.at[:, :, b].add(jnp.sum(d * wy[:, :, a, None], axis=1))
    return [dwy, dwx]


PORTABLE["WinnerRead"] = _portable_read
PORTABLE["WinnerFeaturesTranspose"] = _portable_features_transpose
PORTABLE["WinnerWeightsTranspose"] = _portable_weights_transpose
WINNERS = {mode: Family("Winner", _order, (("corner", mode == "corner_max"),)) for mode in ("max", "corner_max")}


def _tables(boxes: jax.Array, spec: RoIAlignSpec, height: int, width: int):
    """((ry, wy), (rx, wx)) of (K, 4) boxes, differentiable in the boxes through the weights."""
    by, bx = box_bins(boxes, spec)
    out_h, out_w = spec.output_size
    grid = spec.sampling_ratio
    ty = jax.vmap(functools.partial(sampling.sample_taps, pooled=out_h, grid=grid, length=height))(by)
    tx = jax.vmap(functools.partial(sampling.sample_taps, pooled=out_w, grid=grid, length=width))(bx)
    return ty, tx


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def _max_pool(x, boxes, image, in_range, spec: RoIAlignSpec):
    return winners.pooled_max(x, boxes, image, in_range, spec)


@functools.partial(_max_pool.defjvp, symbolic_zeros=True)
def _max_pool_jvp(spec, primals, tangents):
    x, boxes, image, in_range = primals
    x_dot, boxes_dot, _, _ = tangents
    out = _max_pool(x, boxes, image, in_range, spec)
    fixed = jax.lax.stop_gradient
    by, bx, n_samples = winners.sample_geometry(fixed(boxes), spec)
    arg, code = winners.derivative_winners(x, image, by, bx, jnp.where(in_range, n_samples, 0), spec)
    (ry, wy), (rx, wx) = _tables(boxes, spec, x.shape[1], x.shape[2])
    consts = (image, arg, code, ry, rx)
    family = WINNERS[spec.mode]
    parts = []
    if not isinstance(x_dot, SymbolicZero):
        parts.append(one_term_sum(family, x_dot, (wy, wx), consts))
    if not isinstance(boxes_dot, SymbolicZero):

        def read(b):
            (_, wy), (_, wx) = _tables(b, spec, x.shape[1], x.shape[2])
            return one_term_sum(family, x, (wy, wx), consts)

        parts.append(jax.jvp(read, (boxes,), (boxes_dot,))[1])
    return out, functools.reduce(jnp.add, parts)


def max_pool(x: jax.Array, boxes: jax.Array, image: jax.Array, in_range: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """max / corner_max RoIAlign (K, out_h, out_w, C) of x (N, H, W, C) at finite boxes (K, 4) on the CPU kernels.

    The contract of ``jax_roialign.xla.max_pool.max_pool`` (``image`` in [0, N), boxes
    with ``in_range`` False give zeros), for fixed grids of 1 to ``winners.INT8_GRID`` samples
    a side: adaptive and larger ones raise NotImplementedError.
    """
    if not 0 < spec.sampling_ratio <= winners.INT8_GRID:
        raise NotImplementedError(
            f"the CPU kernels pool mode={spec.mode!r} on fixed sampling grids of 1 to {winners.INT8_GRID} samples a"
            f" side (int8 winners), not sampling_ratio={spec.sampling_ratio}"
        )
    return _max_pool(x, boxes, image.astype(jnp.int32), in_range, spec)
