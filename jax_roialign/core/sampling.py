"""Per-axis sampling arithmetic, shared by the XLA path and the Pallas kernels.

RoIAlign's bilinear read factors into one weight per axis: the value of a sample at
(y, x) is ``sum_{h, w} wy_h(y) * wx_w(x) * X[h, w]`` where ``w_h`` is the
one-dimensional read of ``docs/conventions.md`` section 1.2 (zero outside [-1, L],
clamped to the border inside it).  Everything here works on one axis of one box at
a time; callers vmap over boxes and apply it to y and x alike.  Crop-and-resize's
sample positions (section 4) and C's rounding (section 2) are here too.

All functions take and return arrays of the compute dtype (float32, or float64
under x64) and are differentiable in the box coordinates.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp


class AxisBins(NamedTuple):
    """Bins of one box along one axis, in feature-map coordinates.

    Sample ``i`` of bin ``p`` sits at ``start + p * bin_size + (i + 0.5) * bin_size / grid``
    (evaluated in exactly that order, as torchvision, Detectron2, mmcv and onnxruntime do).
    ``grid`` is integral but kept in the compute dtype; ``grid <= 0`` means no samples.
    """

    start: jax.Array
    bin_size: jax.Array
    grid: jax.Array


def divide(numerator: jax.Array, denominator: float | jax.Array) -> jax.Array:
    """IEEE-rounded numerator / denominator, also when the denominator is a constant.

    XLA's algebraic simplifier rewrites ``x / c`` (c a constant or a broadcast scalar)
    into ``x * (1 / c)``, which can differ in the last bit.  Sample coordinates must
    match the frameworks' arithmetic to the bit where the read is discontinuous (at
    -1 and L, and where floor() flips), so the divisor enters as a full-shape array
    behind an optimization barrier, which the simplifier cannot see through.
    """
    denominator = jnp.broadcast_to(jnp.asarray(denominator, numerator.dtype), jnp.shape(numerator))
    return numerator / jax.lax.optimization_barrier(denominator)


def axis_bins(
    lo: jax.Array,
    hi: jax.Array,
    *,
    spatial_scale: float,
    aligned: bool,
    pooled: int,
    sampling_ratio: int,
) -> AxisBins:
    """Bins of the box edge pair (lo, hi), given in input-image coordinates.

    aligned=True subtracts half a pixel (half-pixel convention); aligned=False keeps the
    legacy arithmetic, including its clamp of the box size to at least one pixel.
    ``sampling_ratio <= 0`` is adaptive: ``ceil(size / pooled)`` samples per bin.
    """
    offset = 0.5 if aligned else 0.0
    start = lo * spatial_scale - offset
    size = (hi * spatial_scale - offset) - start
    if not aligned:
        size = jnp.maximum(size, 1.0)
    bin_size = divide(size, pooled)
    if sampling_ratio > 0:
        grid = jnp.full_like(bin_size, sampling_ratio)
    else:
        # Not differentiable: the number of samples is piecewise constant in the box.
        grid = jnp.ceil(divide(jax.lax.stop_gradient(size), pooled))
    return AxisBins(start, bin_size, grid)


def sample_coordinate(bins: AxisBins, p: jax.Array, i: jax.Array) -> jax.Array:
    """Coordinate of sample ``i`` of bin ``p``, with the frameworks' order of operations."""
    return bins.start + p * bins.bin_size + divide((i + 0.5) * bins.bin_size, bins.grid)


class Taps(NamedTuple):
    """The two neighbours of a one-dimensional bilinear read and their weights.

    ``w_lo`` and ``w_hi`` are already zero for a sample outside [-1, length]; at the
    far border ``lo == hi == length - 1`` with ``w_hi == 0``.
    """

    lo: jax.Array
    hi: jax.Array
    w_lo: jax.Array
    w_hi: jax.Array


def bilinear_taps(coord: jax.Array, length: int) -> Taps:
    """One-dimensional bilinear read of RoIAlign (docs/conventions.md section 1.2)."""
    valid = (coord >= -1.0) & (coord <= length)
    c = jnp.maximum(coord, 0.0)
    lo = jnp.floor(jax.lax.stop_gradient(c))
    at_end = lo >= length - 1
    lo = jnp.where(at_end, length - 1, lo)
    hi = jnp.where(at_end, lo, lo + 1)
    c = jnp.where(at_end, lo, c)
    frac = c - lo
    zero = jnp.zeros_like(frac)
    return Taps(
        lo.astype(jnp.int32),
        hi.astype(jnp.int32),
        jnp.where(valid, 1.0 - frac, zero),
        jnp.where(valid, frac, zero),
    )


def sample_taps(bins: AxisBins, pooled: int, grid: int, length: int) -> tuple[jax.Array, jax.Array]:
    """(rows, weights), each (pooled, 2 * grid): every sample's two neighbours on a static grid.

    Entry ``i`` is sample i's lower neighbour and its bilinear weight, entry ``grid + i``
    its upper one (the max modes' per-sample corners read these).
    """
    p = jnp.arange(pooled, dtype=bins.start.dtype)[:, None]
    i = jnp.arange(grid, dtype=bins.start.dtype)[None, :]
    taps = bilinear_taps(sample_coordinate(bins, p, i), length)
    return jnp.concatenate([taps.lo, taps.hi], axis=1), jnp.concatenate([taps.w_lo, taps.w_hi], axis=1)


def fixed_grid_taps(bins: AxisBins, pooled: int, grid: int, length: int) -> tuple[jax.Array, jax.Array]:
    """(rows, weights), each (pooled, 2 * grid): the read taps of a static sampling grid.

    Bin p reads ``sum_j weights[p, j] * X[rows[p, j]]``: the two neighbours of each of
    its ``grid`` samples (:func:`sample_taps`), weighted by the bilinear weight over
    ``grid`` (the mean).
    """
    rows, weights = sample_taps(bins, pooled, grid, length)
    return rows, divide(weights, grid)


def merge_equal_taps(rows: jax.Array, weights: jax.Array, length: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(rows, weights, count): each bin's taps (last axis, T of them) with equal rows merged.

    Where a bin's taps span at most T consecutive rows (``max - min + 1 <= T``), they are
    rewritten as T consecutive rows from the lowest, each weighted by the sum of the
    weights of the taps on it, and ``count`` is the span: the read
    ``sum_j weights[j] * X[rows[j]]`` over ``j < count`` equals the original sum over all
    T taps (up to the order of float additions).  Other bins keep their taps, count T.
    Entries past a bin's count have weight 0 and the following rows, clamped to
    ``length - 1``.  A small box
    puts several samples between the same two rows, so with ``grid = 2`` a bin reads
    about 3 rows instead of 4.  Differentiable in the weights (the merge pattern is
    piecewise constant in the boxes).
    """
    t = rows.shape[-1]
    first = jnp.min(rows, axis=-1)
    span = jnp.max(rows, axis=-1) - first + 1
    window = first[..., None] + jnp.arange(t, dtype=rows.dtype)
    # T is small and static: a sum of T terms, which XLA fuses with its neighbours (a
    # reduction over the tap axis became a separate library call on the CPU).
    zero = jnp.zeros((), weights.dtype)
    merged = sum(jnp.where(rows[..., i, None] == window, weights[..., i, None], zero) for i in range(t))
    fits = (span <= t)[..., None]
    rows = jnp.where(fits, jnp.minimum(window, length - 1), rows)
    weights = jnp.where(fits, merged, weights)
    return rows, weights, jnp.where(fits[..., 0], span, t).astype(jnp.int32)


def _count_below(bins: AxisBins, p: jax.Array, v: jax.Array, strict: bool) -> jax.Array:
    """#samples of bin p with coordinate < v (strict) or <= v, exact at any v.

    The count is read off the arithmetic progression, then corrected against the exact
    per-sample coordinate.  Adaptive grids have ``grid = ceil(bin_size)``, so either one
    sample per bin or a spacing in (0.5, 1]: one correction step each way suffices.
    """
    sg = jax.lax.stop_gradient
    g = bins.grid
    step = bins.bin_size / g
    below = (lambda y: y < v) if strict else (lambda y: y <= v)
    first = sample_coordinate(bins, p, jnp.zeros((), p.dtype))
    safe_step = jnp.where(step > 0, step, 1.0)
    guess = jnp.ceil(sg((v - first) / safe_step))
    guess = jnp.where(step > 0, guess, jnp.where(below(sg(first)), g, 0.0))
    n = jnp.clip(guess, 0.0, g)
    y_prev = sg(sample_coordinate(bins, p, n - 1.0))
    n = jnp.where((n > 0) & ~below(y_prev), n - 1.0, n)
    y_next = sg(sample_coordinate(bins, p, n))
    return jnp.where((n < g) & below(y_next), n + 1.0, n)


def rows_read(bins: AxisBins, pooled: int, length: int) -> tuple[jax.Array, jax.Array]:
    """(first, count), each (pooled,): the consecutive map rows each bin of an adaptive grid reads.

    A bin reads rows floor(first valid sample) .. floor(last valid sample) + 1, clamped
    to the map; a bin without valid samples reads none (count 0, first 0).
    """
    first, last = _valid_rows(bins._replace(grid=jnp.maximum(bins.grid, 1.0)), pooled, length)
    count = jnp.where(bins.grid >= 1.0, jnp.maximum(last - first + 1.0, 0.0), 0.0)
    return first[:, 0], count[:, 0]


def _valid_rows(bins: AxisBins, pooled: int, length: int) -> tuple[jax.Array, jax.Array]:
    """(first row, last row) read by each bin, each (pooled, 1); last < first when none."""
    p = jnp.arange(pooled, dtype=bins.start.dtype)[:, None]
    lo = _count_below(bins, p, jnp.asarray(-1.0, p.dtype), strict=True)  # first valid sample
    hi = _count_below(bins, p, jnp.asarray(float(length), p.dtype), strict=False)  # one past the last

    def clamped(i: jax.Array) -> jax.Array:
        return jnp.clip(jax.lax.stop_gradient(sample_coordinate(bins, p, i)), 0.0, length - 1.0)

    first = jnp.floor(clamped(lo))
    last = jnp.minimum(jnp.floor(clamped(hi - 1.0)) + 1.0, length - 1.0)
    return first, jnp.where(hi > lo, last, first - 1.0)


def adaptive_grid_taps(
    bins: AxisBins, pooled: int, length: int, window: int, start: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(rows, weights), each (pooled, window): averaged read weights of an adaptive grid.

    Row ``rows[p, j]`` gets weight ``weights[p, j]``; the rows of bin p are ``window``
    consecutive rows from ``start[p]`` (default: placed over the rows the bin reads,
    exact when every bin reads at most ``window`` rows (``rows_read``); ``window = length`` always is: the
    dense form).  Rows past the map get weight 0 and index ``length - 1``.

    The weights are in closed form, exact for any grid size under jit (no cap): the
    samples of a bin form an arithmetic progression, and the read weight of row h is
    the tent ``1 - |y - h|`` on [0, L-1] (constant 1 on [-1, 0) for row 0 and on
    [L-1, L] for row L-1, zero beyond).  The sum of a linear function over the samples
    inside one unit segment [u, u+1) needs only their count and the first one, so a
    bin costs O(window) whatever its grid.  Bins with no samples (``grid <= 0``: a
    zero-size or inverted aligned box) get all-zero weights.
    """
    dtype = bins.start.dtype
    has_samples = bins.grid >= 1.0
    # Empty bins compute with one dummy sample (finite values and gradients), masked below.
    g = jnp.maximum(bins.grid, 1.0)
    bins = bins._replace(grid=g)
    step = bins.bin_size / g
    p = jnp.arange(pooled, dtype=dtype)[:, None]
    if start is None:
        window = min(window, length)
        first, _ = _valid_rows(bins, pooled, length)
        start = jnp.clip(first, 0.0, float(length - window))
    else:
        start = jnp.asarray(start, dtype)[:, None]
    # Segment boundaries u = start - 1 .. start + window: segment [u, u+1) feeds rows u, u+1.
    u = start + jnp.arange(-1, window + 1, dtype=dtype)
    below = _count_below(bins, p, u, strict=True)
    n_seg = below[:, 1:] - below[:, :-1]
    seg = u[:, :-1]
    first_y = sample_coordinate(bins, p, below[:, :-1])
    # Sum over the segment's samples of (y - u): n * (y_first - u) + step * n(n-1)/2.
    frac_sum = n_seg * (first_y - seg) + step * n_seg * (n_seg - 1.0) / 2.0
    inner = (n_seg > 0) & (seg >= 0) & (seg <= length - 2)  # the tails are counted below
    frac_sum = jnp.where(inner, frac_sum, 0.0)
    falling = jnp.where(inner, n_seg - frac_sum, 0.0)
    rows = u[:, 1:-1]
    w = falling[:, 1:] + frac_sum[:, :-1]  # row t: falling edge of [t, t+1), rising edge of [t-1, t)
    # Clamped tails: [-1, 0) reads row 0, [L-1, L] reads row L-1, both with weight 1.
    count = functools.partial(_count_below, bins, p)
    n_low = count(jnp.asarray(0.0, dtype), True) - count(jnp.asarray(-1.0, dtype), True)
    n_high = count(jnp.asarray(float(length), dtype), False) - count(jnp.asarray(length - 1.0, dtype), True)
    w = w + jnp.where(rows == 0, n_low, 0.0) + jnp.where(rows == length - 1, n_high, 0.0)
    return jnp.minimum(rows, length - 1).astype(jnp.int32), jnp.where(has_samples, w / g, 0.0)


def crop_axis_coordinates(lo: jax.Array, hi: jax.Array, crop: int, length: int) -> tuple[jax.Array, jax.Array]:
    """(coords (K, crop), valid (K, crop)): TF crop_and_resize's sample positions along one axis.

    lo, hi (K,) are normalized box edges (0 and 1 are the first and last pixel centres)
    on an axis of ``length`` pixels; sample i of ``crop`` sits at
    lo * (length - 1) + i * (hi - lo) * (length - 1) / (crop - 1), or at the box centre
    when crop == 1.  valid marks samples inside [0, length - 1] (the others take the
    extrapolation value).
    """
    scale = float(length - 1)
    if crop > 1:
        i = jnp.arange(crop, dtype=lo.dtype)
        step = divide((hi - lo) * scale, crop - 1)
        coords = lo[:, None] * scale + i * step[:, None]
    else:
        coords = (0.5 * (lo + hi) * scale)[:, None]
    return coords, (coords >= 0) & (coords <= scale)


def round_half_away_from_zero(v: jax.Array) -> jax.Array:
    """C's round(): halves away from zero (jnp.round rounds them to even).

    Written as floor plus a comparison of the exact fraction, so values just below
    a half (0.49999997) do not round up through the addition of 0.5.
    """
    a = jnp.abs(v)
    whole = jnp.floor(a)
    rounded = whole + (a - whole >= 0.5).astype(v.dtype)
    return jnp.where(v < 0, -rounded, rounded)
