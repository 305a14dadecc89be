"""Separable resize in plain jax.numpy (``docs/conventions.md`` section 8).

Each axis is resampled by its :class:`~jax_roialign.core.resize.AxisTable`, a window of
taps per output.  Tables are static, so how they are applied is decided at trace time:

- a table of at least MIN_SLICED outputs that is periodic (output ``r + p j`` reads the
  window of output ``r`` moved by ``q j`` inputs, for a period p <= MAX_PERIOD, as in
  every integer or simple-ratio resize) is applied as **strided slices** of the
  edge-padded input, one per phase and tap, and the phases are interleaved once at the
  end, after both axes: the fast path for large images;
- any other table is **gathered** (``jnp.take`` along the axis): one gather per tap,
  fused with the weighted sum into one loop, for MIN_SLICED outputs or more; below, one
  gather of all taps and a sum over them, a few operations to compile whatever the number
  of taps (what small images need).

Both compute ``sum_t w[o, t] * x[clip(start[o] + t)]`` in the tap order of the table, in
float32 (float64 for float64 input).  That float resample is a linear primitive,
``x -> T_h x T_w^T``, whose transpose (the gradient) is the resample by the **transposed
tables** (:func:`~jax_roialign.core.resize.transposed`: input i receives every output that
reads it, clamped reads folded onto the border rows, outputs outside dropped), applied by
the same plans: a 2x upsample's transpose is again periodic (period 1, step 2), so its
gradient is strided slices of the cotangent, with no scatter and no pad with interior
padding (JAX's own transpose of the slices); a gathered table's gradient is a gather, not
a scatter-add.  The transpose of the transpose is the original map, so every
transformation (jit, vmap, jvp, grad, linear_transpose, checkpoint, scan, higher orders)
stays on these plans.

A nearest-neighbour table moves values without arithmetic, so it keeps the input dtype
(integers included) and is exact; it stays plain jax.numpy (its gradient, a gather's
scatter-add or slices' pads, is already fast).  The integer (uint8) arithmetic of torch,
onnxruntime and OpenCV is here too, each as the framework rounds it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jax_roialign.core.avals import result_aval
from jax_roialign.core.bins import compute_dtype
from jax_roialign.core.resize import (
    AxisTable,
    Cv2Uint8Rule,
    FixedPointRule,
    FixedPointTable,
    OnnxLinearUint8Rule,
    transposed,
)

# Largest period (outputs per repetition of the table) applied with strided slices; the
# number of slices is about period x taps, so longer periods go to the gather.
MAX_PERIOD = 8
# Fewest outputs for which a periodic table is applied with slices: below it, one gather
# runs as fast and compiles in a fraction of the time (one op instead of period x taps).
MIN_SLICED = 64
# Most slices per phase for which a transposed table's periodic axis clamps each slice's reads
# instead of edge-padding its input (the cotangent, the larger array) up front: a clamped
# slice is a concatenation that costs a few selects per element in the fused sum, so
# padding wins for wider windows (a 2x bicubic upsample's transpose has 8 per phase).
MAX_CLAMPED_TERMS = 4
STRATEGIES: tuple[str, ...] = ("auto", "slices", "gather")


@dataclasses.dataclass(frozen=True, eq=False)
class Phase:
    """Phase r of a periodic plan: its terms (padded start offset, weights over j or None for 1)."""

    terms: tuple[tuple[int, np.ndarray | float | None], ...]


@dataclasses.dataclass(frozen=True, eq=False)
class PeriodicPlan:
    """Outputs ``r + period * j`` (j < count) = sum over terms of w * xpad[offset + step * j]."""

    period: int
    step: int
    count: int
    pad: tuple[int, int]
    phases: tuple[Phase, ...]
    size: int
    selection: bool


@dataclasses.dataclass(frozen=True, eq=False)
class GatherPlan:
    """Gathered taps indices (size, taps), summed with weights (None: a selection, one tap).

    Tap by tap for axes of MIN_SLICED outputs or more, all at once below.
    """

    indices: np.ndarray
    weights: np.ndarray | None
    size: int
    selection: bool


def _weight(w: np.ndarray) -> np.ndarray | float | None:
    """None for all ones, a float for a constant, else the vector."""
    if np.all(w == 1.0):
        return None
    if np.all(w == w[0]):
        return float(w[0])
    return w


def _copies(table: AxisTable) -> bool:
    """Whether every output copies one input (a selection), an output with no tap being outside.

    A row of zeros inside the axis (as in a transposed table: an input no output reads)
    is a zero to compute, not a copy.
    """
    empty = ~np.any(table.weights != 0, axis=1)
    return table.is_selection() and bool(np.all(table.outside[empty]))


def _periodic(table: AxisTable, period: int) -> PeriodicPlan | None:
    """The table as a periodic plan with this period, or None if it is not one exactly.

    Every tap of nonzero weight must read, at the affine window ``a_r + q j``, the same
    clamped input index as in the table; the weights are taken over as they are.
    """
    size, length, taps = table.size, table.length, table.taps
    blocks = size // period
    if blocks < 1:
        return None
    count = -(-size // period)
    middle = (blocks - 1) // 2
    step = 1
    if blocks >= 2:
        steps = {int(table.start[r + period * (middle + 1)] - table.start[r + period * middle]) for r in range(period)}
        if len(steps) != 1:
            return None
        step = steps.pop()
        if step <= 0:
            return None
    offsets = np.array([table.start[r + period * middle] - step * middle for r in range(period)])
    affine = (offsets[np.arange(size) % period] + step * (np.arange(size) // period)).astype(np.int64)
    weights = np.zeros((count * period, taps))
    indices = table.indices()
    rows = np.arange(size)
    for t in range(taps):
        need = table.weights[:, t] != 0
        # The plan tap reading what table tap t reads: t moved by the difference of the starts,
        # kept within the window (a read clamped at the border is the same from either tap).
        moved = np.clip(t + table.start - affine, 0, taps - 1)
        if not np.all((np.clip(affine + moved, 0, length - 1) == indices[:, t]) | ~need):
            return None
        np.add.at(weights, (rows[need], moved[need]), table.weights[need, t])
    phases = []
    lo, hi = 0, 0
    for r in range(period):
        w = weights[r::period]  # (count, taps)
        terms = []
        for t in range(taps):
            if not np.any(w[:, t]):
                continue
            first = int(offsets[r] + t)
            last = first + step * (count - 1)
            lo, hi = min(lo, first), max(hi, last - (length - 1))
            terms.append((first, _weight(w[:, t])))
        phases.append(Phase(tuple(terms)))
    pad = (-lo, max(hi, 0))
    phases = tuple(Phase(tuple((first + pad[0], w) for first, w in p.terms)) for p in phases)
    return PeriodicPlan(period, step, count, pad, phases, size, _copies(table))


@functools.lru_cache(maxsize=1024)
def axis_plan(table: AxisTable, strategy: str = "auto") -> PeriodicPlan | GatherPlan | None:
    """How to apply a table: None (identity), a periodic plan (slices) or a gather plan.

    strategy "auto" slices periodic tables of at least MIN_SLICED outputs; "slices"
    slices any periodic table; "gather" always gathers.
    """
    if table.is_identity():
        return None
    if strategy == "slices" or (strategy == "auto" and table.size >= MIN_SLICED):
        for period in range(1, MAX_PERIOD + 1):
            plan = _periodic(table, period)
            if plan is not None:
                return plan
    used = [t for t in range(table.taps) if np.any(table.weights[:, t])] or [0]
    indices = table.indices()[:, used].astype(np.int32)
    selection = _copies(table)
    if selection:  # one tap per output, weight 1 (or no tap at all: weight 0, only where outside)
        picked = np.argmax(table.weights != 0, axis=1)
        indices = table.indices()[np.arange(table.size), picked][:, None].astype(np.int32)
    return GatherPlan(indices, None if selection else table.weights[:, used], table.size, selection)


def _scaled(v: jax.Array, w, axis: int) -> jax.Array:
    if w is None:
        return v
    if isinstance(w, float):
        return v * jnp.asarray(w, v.dtype)
    shape = [1] * v.ndim
    shape[axis] = w.shape[0]
    return v * jnp.asarray(w.reshape(shape), v.dtype)


def _sum(terms: list[jax.Array], like: jax.Array, axis: int, size: int) -> jax.Array:
    if not terms:  # every weight zero (e.g. all outputs outside): zeros of the output shape
        shape = list(like.shape)
        shape[axis] = size
        return jnp.zeros(shape, like.dtype)
    out = terms[0]
    for term in terms[1:]:
        out = out + term
    return out


def _edge_pad(x: jax.Array, axis: int, lo: int, hi: int) -> jax.Array:
    """x with its first / last slice along axis repeated lo / hi times (reads clamped to the axis).

    Written as a concatenation of broadcasts: its transpose is slices and sums, several
    times faster under XLA's CPU backend than the transpose of ``jnp.pad(mode="edge")``.
    """
    if not (lo or hi):
        return x
    n = x.shape[axis]
    parts = []
    for count, index in ((lo, 0), (0, None), (hi, n - 1)):
        if index is None:
            parts.append(x)
        elif count:
            edge = jax.lax.slice_in_dim(x, index, index + 1, axis=axis)
            shape = list(x.shape)
            shape[axis] = count
            parts.append(jnp.broadcast_to(edge, shape))
    return jnp.concatenate(parts, axis=axis)


def _clamped_slice(x: jax.Array, axis: int, start: int, step: int, count: int) -> jax.Array:
    """x[clip(start + step * j, 0, n - 1)] along axis for j < count (step > 0), without a gather.

    The reads before the axis are broadcasts of its first slice, those past it of its
    last, around one strided slice: a concatenation that XLA fuses into the weighted sum
    consuming it (padding the whole input up front instead is a copy of it, two for two
    axes, which costs as much as the sum itself on a large cotangent).
    """
    n = x.shape[axis]
    below = min(count, max(0, -(start // step)))
    inside = min(count, max(below, (n - 1 - start) // step + 1)) - below
    above = count - below - inside
    parts = []
    if below:
        parts.append(_broadcast_along(jax.lax.slice_in_dim(x, 0, 1, axis=axis), axis, below))
    if inside:
        first = start + step * below
        parts.append(jax.lax.slice_in_dim(x, first, first + step * (inside - 1) + 1, step, axis))
    if above:
        parts.append(_broadcast_along(jax.lax.slice_in_dim(x, n - 1, n, axis=axis), axis, above))
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=axis)


def _broadcast_along(edge: jax.Array, axis: int, count: int) -> jax.Array:
    shape = list(edge.shape)
    shape[axis] = count
    return jnp.broadcast_to(edge, shape)


def _apply_periodic(x: jax.Array, plan: PeriodicPlan, axis: int, padded: bool) -> list[jax.Array]:
    """The phases of the axis, each with `count` outputs along it.

    padded: x is already edge-padded by plan.pad; otherwise each read is clamped on its own.
    """
    phases = []
    for phase in plan.phases:
        terms = []
        for first, w in phase.terms:
            if padded:
                sliced = jax.lax.slice_in_dim(x, first, first + plan.step * (plan.count - 1) + 1, plan.step, axis)
            else:
                sliced = _clamped_slice(x, axis, first - plan.pad[0], plan.step, plan.count)
            terms.append(_scaled(sliced, w, axis))
        phases.append(_sum(terms, x, axis, plan.count))
    return phases


def _apply_gather(x: jax.Array, plan: GatherPlan, axis: int) -> jax.Array:
    size, taps = plan.indices.shape
    if plan.weights is None:
        return jnp.take(x, jnp.asarray(plan.indices[:, 0]), axis=axis, mode="clip")
    if size >= MIN_SLICED:
        # One gather per tap: XLA fuses them and the weighted sum into one loop over the output.
        terms = [
            _scaled(jnp.take(x, jnp.asarray(plan.indices[:, t]), axis=axis, mode="clip"), plan.weights[:, t], axis)
            for t in range(taps)
        ]
        return _sum(terms, x, axis, size)
    # Small axes: all taps in one gather (a few ops to compile, whatever the number of taps).
    gathered = jnp.take(x, jnp.asarray(plan.indices.reshape(-1)), axis=axis, mode="clip")
    gathered = gathered.reshape(x.shape[:axis] + (size, taps) + x.shape[axis + 1 :])
    weights = plan.weights.reshape((size, taps) + (1,) * (x.ndim - axis - 1))
    return jnp.sum(gathered * jnp.asarray(weights, x.dtype), axis=axis + 1)


def _interleave(phases: list[jax.Array], axis: int, size: int) -> jax.Array:
    """Phase r's element j goes to position r + len(phases) * j along axis; cut to size."""
    if len(phases) == 1:
        out = phases[0]
    else:
        stacked = jnp.stack(phases, axis=axis + 1)
        shape = list(phases[0].shape)
        shape[axis] *= len(phases)
        out = stacked.reshape(shape)
    return jax.lax.slice_in_dim(out, 0, size, axis=axis) if out.shape[axis] != size else out


def _phases(x: jax.Array, plan, axis: int, padded: bool) -> list[jax.Array]:
    """The phases of x resampled along axis by plan (one phase unless the plan is periodic)."""
    if plan is None:
        return [x]
    if isinstance(plan, PeriodicPlan):
        return _apply_periodic(x, plan, axis, padded)
    return [_apply_gather(x, plan, axis)]


def _is_selection(plan) -> bool:
    return plan is None or plan.selection


def _order(table_h: AxisTable, table_w: AxisTable, horizontal_first: bool | None) -> bool:
    """Whether the vertical pass goes first: the axis that shrinks the data most, unless fixed."""
    if horizontal_first is not None:
        return not horizontal_first
    return table_h.size * table_w.length <= table_w.size * table_h.length


def _separable(
    x: jax.Array, table_h: AxisTable, table_w: AxisTable, first_h: bool, strategy: str, pad: bool = True
) -> jax.Array:
    """x resampled by both tables in x's dtype, the vertical pass first if first_h; outside outputs 0.

    Plain jax.numpy: the forward of the linear primitive below, and the whole resample of
    selection tables (whose autodiff transpose, a gather's scatter-add, is fast enough).
    pad: edge-pad the periodic axes once, up front (cheaper, for an input smaller than the
    output, than padding each phase of the first axis again for the second); otherwise
    (a transposed table, whose input, a cotangent, is the larger array: padding copies
    it once per axis) each slice clamps its own reads, on axes of at most
    MAX_CLAMPED_TERMS slices per phase.
    """
    plan_h, plan_w = axis_plan(table_h, strategy), axis_plan(table_w, strategy)
    order = ((1, plan_h), (2, plan_w)) if first_h else ((2, plan_w), (1, plan_h))
    (axis_a, plan_a), (axis_b, plan_b) = order
    size_a = x.shape[axis_a] if plan_a is None else plan_a.size
    size_b = x.shape[axis_b] if plan_b is None else plan_b.size
    padded = {}
    for axis, plan in order:
        if isinstance(plan, PeriodicPlan):
            padded[axis] = pad or max(len(phase.terms) for phase in plan.phases) > MAX_CLAMPED_TERMS
            if padded[axis]:
                x = _edge_pad(x, axis, *plan.pad)
    # Both axes are resampled phase by phase; the phases are interleaved once, at the end.
    grid = [
        _phases(phase, plan_b, axis_b, padded.get(axis_b, True))
        for phase in _phases(x, plan_a, axis_a, padded.get(axis_a, True))
    ]
    y = _interleave([_interleave(row, axis_b, size_b) for row in grid], axis_a, size_a)
    outside = table_h.outside[:, None] | table_w.outside[None, :]
    if outside.any():
        y = jnp.where(jnp.asarray(outside)[None, :, :, None], jnp.zeros((), y.dtype), y)
    return y


# ------------------------------------------------------------------------ the linear primitive
# The float resample by two tables is the linear map x -> T_h x T_w^T (outside outputs 0).  As a
# primitive, its transpose is the resample by the transposed tables (``core.resize.transposed``,
# the passes in the opposite order, reads clamped per slice instead of padding the cotangent),
# applied by the same plans (slices or gathers).  JAX's own transpose of the slices, a pad with
# interior padding per phase and tap and a sum of full-size arrays, is slower
# (docs/performance.md, "Resize").  The transpose of the transpose is the original map.
_resample_p = Primitive("roialign_resample")


def _bind(x: jax.Array, table_h: AxisTable, table_w: AxisTable, first_h: bool, strategy: str, pad: bool) -> jax.Array:
    return _resample_p.bind(x, table_h=table_h, table_w=table_w, first_h=first_h, strategy=strategy, pad=pad)


def _resample_abstract(x, *, table_h, table_w, first_h, strategy, pad):
    return result_aval((x.shape[0], table_h.size, table_w.size, x.shape[3]), x.dtype, (x,))


def _resample_jvp(primals, tangents, *, table_h, table_w, first_h, strategy, pad):
    (x,), (dx,) = primals, tangents
    y = _bind(x, table_h, table_w, first_h, strategy, pad)
    if type(dx) is ad.Zero:
        return y, ad.Zero.from_primal_value(y)
    return y, _bind(dx, table_h, table_w, first_h, strategy, pad)  # linear: the tangent is the map itself


def _resample_transpose(ct, x, *, table_h, table_w, first_h, strategy, pad):
    if type(ct) is ad.Zero:
        return [None]
    return [_bind(ct, transposed(table_h), transposed(table_w), not first_h, strategy, not pad)]


def _resample_batch(args, dims, *, table_h, table_w, first_h, strategy, pad):
    """A batch axis joins the image axis N (every image is resampled on its own)."""
    (x,), (dim,) = args, dims
    x = jnp.moveaxis(x, dim, 0)
    batch, n = x.shape[:2]
    y = _bind(x.reshape((batch * n, *x.shape[2:])), table_h, table_w, first_h, strategy, pad)
    return y.reshape((batch, n, *y.shape[1:])), 0


def _resample_fn(x, *, table_h, table_w, first_h, strategy, pad):
    return _separable(x, table_h, table_w, first_h, strategy, pad)


_resample_p.def_impl(jax.jit(_resample_fn, static_argnames=("table_h", "table_w", "first_h", "strategy", "pad")))
_resample_p.def_abstract_eval(_resample_abstract)
mlir.register_lowering(_resample_p, mlir.lower_fun(_resample_fn, multiple_results=False))
ad.primitive_jvps[_resample_p] = _resample_jvp
ad.primitive_transposes[_resample_p] = _resample_transpose
batching.primitive_batchers[_resample_p] = _resample_batch


def resample(
    x: jax.Array,
    table_h: AxisTable,
    table_w: AxisTable,
    fill: float = 0.0,
    horizontal_first: bool | None = None,
    strategy: str = "auto",
) -> jax.Array:
    """(N, H, W, C) -> (N, out_h, out_w, C) by the two tables, in the compute dtype.

    Nearest-neighbour tables move values without arithmetic and keep x's dtype; any
    other table computes in float32 (float64 for float64 x) and returns that dtype, as a
    linear primitive whose transpose (the gradient) is the transposed tables' resample.
    Outputs marked outside in either table take ``fill``.  horizontal_first fixes the
    order of the passes (None: the axis that shrinks the data most goes first);
    strategy is :func:`axis_plan`'s.
    """
    first_h = _order(table_h, table_w, horizontal_first)
    if _is_selection(axis_plan(table_h, strategy)) and _is_selection(axis_plan(table_w, strategy)):
        y = _separable(x, table_h, table_w, first_h, strategy)
    else:
        y = _bind(x.astype(compute_dtype(x.dtype)), table_h, table_w, first_h, strategy, True)
    outside = table_h.outside[:, None] | table_w.outside[None, :]
    if outside.any():
        if jnp.issubdtype(y.dtype, jnp.integer):  # a copied integer image: the fill rounded and saturated
            info = jnp.iinfo(y.dtype)
            fill = float(np.clip(np.rint(fill), info.min, info.max))
        y = jnp.where(jnp.asarray(outside)[None, :, :, None], jnp.asarray(fill, y.dtype), y)
    return y


# ------------------------------------------------------------------------------ integer paths
def _shift_right(v: jax.Array, bits: int) -> jax.Array:
    """Arithmetic right shift of an integer array by a constant (floor division by 2^bits)."""
    return jax.lax.shift_right_arithmetic(v, jnp.asarray(bits, v.dtype))


def _integer_pass(x: jax.Array, fixed: FixedPointTable, axis: int) -> jax.Array:
    """clip((sum_t q[o, t] x[clip(start[o] + t)] + bias) >> shift, 0, 255) along axis, int32."""
    indices = fixed.table.indices()
    acc = None
    for t in range(fixed.q.shape[1]):
        if not np.any(fixed.q[:, t]):
            continue
        shape = [1] * x.ndim
        shape[axis] = fixed.q.shape[0]
        term = jnp.take(x, jnp.asarray(indices[:, t], jnp.int32), axis=axis) * jnp.asarray(
            fixed.q[:, t].reshape(shape), jnp.int32
        )
        acc = term if acc is None else acc + term
    if acc is None:
        shape = list(x.shape)
        shape[axis] = fixed.q.shape[0]
        acc = jnp.zeros(shape, jnp.int32)
    return jnp.clip(_shift_right(acc + fixed.bias, fixed.shift), 0, 255)


def _fill_outside(y: jax.Array, outside_h: np.ndarray, outside_w: np.ndarray, fill) -> jax.Array:
    outside = outside_h[:, None] | outside_w[None, :]
    if not outside.any():
        return y
    return jnp.where(jnp.asarray(outside)[None, :, :, None], jnp.asarray(fill, y.dtype), y)


def fixed_point_passes(x: jax.Array, rule: FixedPointRule) -> jax.Array:
    """uint8 (N, H, W, C) through the rule's horizontal integer pass, then its vertical one."""
    y = x.astype(jnp.int32)
    if rule.w is not None:
        y = _integer_pass(y, rule.w, 2)
    if rule.h is not None:
        y = _integer_pass(y, rule.h, 1)
    y = y.astype(jnp.uint8)
    if rule.h is not None and rule.w is not None:
        y = _fill_outside(y, rule.h.table.outside, rule.w.table.outside, rule.fill)
    return y


def _rounded_products(weights: list[np.ndarray], values: list[jax.Array]) -> list[jax.Array]:
    """float32 products weights[i] * values[i], each rounded to float32 on its own.

    XLA's CPU backend fuses a product into the sum that consumes it as one FMA, which
    rounds once instead of twice; the integer paths truncate or round the sum, so one
    ulp can change the result.  Computed in a ``lax.map`` body, the products are
    materialized before any sum sees them (an optimization barrier is not enough: the
    CPU pipeline drops it before fusing).
    """
    shape = jnp.broadcast_shapes(*(w.shape for w in weights), *(v.shape for v in values))
    w = jnp.stack([jnp.broadcast_to(jnp.asarray(wi, jnp.float32), shape) for wi in weights])
    v = jnp.stack([jnp.broadcast_to(vi.astype(jnp.float32), shape) for vi in values])
    return list(jax.lax.map(lambda pair: pair[0] * pair[1], (w, v)))


def _corners(x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
    return jnp.take(jnp.take(x, jnp.asarray(rows, jnp.int32), axis=1), jnp.asarray(cols, jnp.int32), axis=2)


def onnx_bilinear_uint8(x: jax.Array, rule: OnnxLinearUint8Rule) -> jax.Array:
    """onnxruntime's uint8 linear Resize (no antialias) on (N, H, W, C).

    NCHW models: ``trunc((dx2 dy2) X11 + (dx1 dy2) X21 + (dx2 dy1) X12 + (dx1 dy1) X22)``
    summed in that order in float32; NHWC models: the same with 10-bit integer distances,
    ``// 2^20``.  Outputs outside either axis (tf_crop_and_resize) take ``fill``.
    """
    taps_h, taps_w = rule.h, rule.w
    top, bottom = taps_h.i1, taps_h.i2
    left, right = taps_w.i1, taps_w.i2
    x11, x21 = _corners(x, top, left), _corners(x, top, right)
    x12, x22 = _corners(x, bottom, left), _corners(x, bottom, right)
    if rule.layout == "NCHW":
        # The weight products are float32 constants (computed here, rounded as in C++).
        dx1, dx2, dy1, dy2 = taps_w.d1[None, :], taps_w.d2[None, :], taps_h.d1[:, None], taps_h.d2[:, None]
        weights = [w[None, :, :, None] for w in (dx2 * dy2, dx1 * dy2, dx2 * dy1, dx1 * dy1)]
        p11, p21, p12, p22 = _rounded_products(weights, [x11, x21, x12, x22])
        y = jnp.trunc(((p11 + p21) + p12) + p22).astype(jnp.int32)
    else:
        i = jnp.int32
        ex1, ex2 = (jnp.asarray(e, i)[None, None, :, None] for e in (taps_w.e1, taps_w.e2))
        ey1, ey2 = (jnp.asarray(e, i)[None, :, None, None] for e in (taps_h.e1, taps_h.e2))
        acc = ex2 * ey2 * x11.astype(i) + ex1 * ey2 * x21.astype(i) + ex2 * ey1 * x12.astype(i)
        y = jnp.floor_divide(acc + ex1 * ey1 * x22.astype(i), 1 << 20)
    y = jnp.clip(y, 0, 255).astype(jnp.uint8)
    return _fill_outside(y, taps_h.outside, taps_w.outside, rule.fill)


def _taps_sum(x: jax.Array, table: AxisTable, weights: np.ndarray, axis: int, dtype) -> list[jax.Array]:
    """The weighted taps of a table along axis, in tap order (weights cast to dtype)."""
    indices = table.indices()
    shape = [1] * x.ndim
    shape[axis] = table.size
    return [
        jnp.take(x, jnp.asarray(indices[:, t], jnp.int32), axis=axis) * jnp.asarray(weights[:, t].reshape(shape), dtype)
        for t in range(table.taps)
        if np.any(weights[:, t])
    ]


def cv2_uint8(x: jax.Array, rule: Cv2Uint8Rule) -> jax.Array:
    """cv2.resize's uint8 arithmetic on (N, H, W, C) (see :class:`~jax_roialign.core.resize.Cv2Uint8Rule`)."""
    if rule.kind == "area":
        y = resample(x.astype(jnp.float32), rule.h, rule.w, horizontal_first=True)
        return round_to_integer(y, jnp.uint8)
    if rule.kind in ("block", "block2x2"):
        # Weights 1: block sums of uint8 values, exact in float32.
        sums = resample(x.astype(jnp.float32), rule.h, rule.w).astype(jnp.int32)
        if rule.kind == "block2x2":
            return jnp.clip(_shift_right(sums + 2, 2), 0, 255).astype(jnp.uint8)
        factor = np.float32(1.0) / np.float32(rule.h.taps * rule.w.taps)
        return round_to_integer(sums.astype(jnp.float32) * factor, jnp.uint8)
    # 11-bit fixed point: exact integer horizontal sums (scale 2048), then the vertical rule.
    q_w = np.rint(rule.w.weights * 2048).astype(np.int64)
    q_h = np.rint(rule.h.weights * 2048).astype(np.int64)
    rows = _sum(_taps_sum(x.astype(jnp.int32), rule.w, q_w, 2, jnp.int32), x, 2, rule.w.size)
    indices = rule.h.indices()
    taps = [jnp.take(rows, jnp.asarray(indices[:, t], jnp.int32), axis=1) for t in range(rule.h.taps)]
    beta = [q_h[:, t].reshape(1, -1, 1, 1) for t in range(rule.h.taps)]
    if rule.kind == "linear":
        acc = sum(
            _shift_right(jnp.asarray(b, jnp.int32) * _shift_right(v, 4), 16) for b, v in zip(beta, taps, strict=True)
        )
        return jnp.clip(_shift_right(acc + 2, 2), 0, 255).astype(jnp.uint8)
    scale = np.float32(1.0 / (2048 * 2048))
    terms = _rounded_products([b.astype(np.float32) * scale for b in beta], taps)
    acc = terms[0]
    for term in terms[1:]:
        acc = acc + term
    return round_to_integer(acc, jnp.uint8)


def integer_resample(x: jax.Array, rule) -> jax.Array:
    """uint8 x resampled by one framework's integer arithmetic (a rule of ``core.resize``)."""
    if isinstance(rule, FixedPointRule):
        return fixed_point_passes(x, rule)
    if isinstance(rule, OnnxLinearUint8Rule):
        return onnx_bilinear_uint8(x, rule)
    if isinstance(rule, Cv2Uint8Rule):
        return cv2_uint8(x, rule)
    raise TypeError(f"unknown integer rule {rule!r}")


def round_to_integer(y: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """Float results to an integer dtype: round half to even, saturate to the dtype's range."""
    info = jnp.iinfo(dtype)
    return jnp.clip(jnp.round(y), info.min, info.max).astype(dtype)
