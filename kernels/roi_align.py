"""RoIAlign on the Pallas kernels, differentiable in the features (kernels) and the boxes (XLA path).

Contract: that of ``jax_roialign.xla.roi_align``.  The per-box geometry is built in XLA
with the shared sampling code (``geometry``); the kernels do the reads and reductions
(``avg_pool``, ``max_pool``).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jax_roialign import xla
from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards
from jax_roialign.core.bins import compute_dtype

from . import avg_pool, geometry, max_pool
from .config import BlockSizes
from .target import Target, check_block_sizes, check_supported, select_target


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Static configuration of one call (hashable: a static argument under jit)."""

    spec: RoIAlignSpec
    block_sizes: BlockSizes
    target: Target


def roi_align(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    spec: RoIAlignSpec,
    *,
    block_sizes: BlockSizes | None = None,
    target: Target | None = None,
) -> jax.Array:
    """RoIAlign of canonical inputs on the Pallas kernels; returns (K, out_h, out_w, C) in features' dtype.

    Same contract as ``jax_roialign.xla.roi_align``: features (N, H, W, C), boxes
    (K, 4) [x1, y1, x2, y2] in input-image coordinates, batch_indices (K,) ints.
    Accumulation is float32 (float64 for float64 features).  A box whose batch index
    lies outside [0, N) yields zeros and reads nothing; a box with a NaN or infinite
    coordinate yields NaN and passes no gradient; a bin with no samples yields 0.

    Gradients: the features' gradient comes from a deterministic owner-computes
    kernel (no atomics: bitwise reproducible); the boxes' gradient is the XLA path's
    (``jax.vjp`` of ``jax_roialign.xla.roi_align`` with the features held fixed),
    computed only when the boxes are differentiated.

    Args:
      features, boxes, batch_indices, spec: as for ``jax_roialign.xla.roi_align``.
      block_sizes: tiling (default ``BlockSizes()``); it does not change results
        beyond float rounding.
      target: kernel variant and interpret mode (default ``select_target()``: the
        backend's lowering on GPU/TPU, interpret mode on a CPU).

    Raises:
      NotImplementedError: before tracing anything, where the backend has no usable
        Pallas lowering for this call (the dispatcher then uses XLA).
      ValueError: block_sizes the target cannot tile with (see ``check_block_sizes``).

    Verified in Pallas interpret mode only (on a CPU); nothing about speed is claimed.
    """
    if block_sizes is None:
        block_sizes = BlockSizes()
    elif not isinstance(block_sizes, BlockSizes):
        raise TypeError(f"block_sizes must be a BlockSizes, got {block_sizes!r}")
    if target is None:
        target = select_target()
    elif not isinstance(target, Target):
        raise TypeError(f"target must be a Target, got {target!r}")
    check_supported(target, features.dtype)
    check_block_sizes(target, block_sizes, features.shape[-1])
    return _roi_align(features, boxes, batch_indices, _Plan(spec, block_sizes, target))


# Separately jitted stages: called eagerly (or under an eager jax.grad), a kernel is compiled
# once per shape and reused by every convention; under an enclosing jit they inline.
_prepare_boxes = jax.jit(guards.isolate_nonfinite_boxes)
_mark_nonfinite = jax.jit(guards.mark_nonfinite)
_image_ranges = jax.jit(geometry.image_ranges, static_argnames="n_images")
_avg_geometry = jax.jit(geometry.avg_geometry, static_argnames=("features_shape", "spec", "tile_rows", "tile_cols"))
_max_geometry = jax.jit(geometry.max_geometry, static_argnames=("n_images", "spec"))
_avg_forward = jax.jit(avg_pool.forward, static_argnames=("output_size", "block_sizes", "target"))
_avg_backward = jax.jit(avg_pool.backward, static_argnames=("features_shape", "block_sizes", "target"))
_max_forward = jax.jit(max_pool.forward, static_argnames=("output_size", "corner", "block_sizes", "target"))
_max_backward = jax.jit(max_pool.backward, static_argnames=("features_shape", "block_sizes", "target"))


@functools.partial(jax.jit, static_argnames="spec")
def _box_gradient(x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, g: jax.Array, spec: RoIAlignSpec):
    """The XLA path's gradient w.r.t. the boxes for cotangent g, with the features held fixed."""
    _, pullback = jax.vjp(lambda b: xla.roi_align(x, b, batch_indices, spec), boxes)
    return pullback(g)[0]


def _roi_align(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, plan: _Plan) -> jax.Array:
    cdt = compute_dtype(features.dtype)
    boxes, batch_indices, finite = _prepare_boxes(boxes.astype(cdt), batch_indices.astype(jnp.int32))
    x = features.astype(cdt)
    if boxes.shape[0] == 0:
        out = jnp.zeros((0, *plan.spec.output_size, x.shape[-1]), cdt)
    else:
        out = _pool(x, boxes, batch_indices, plan)
    return _mark_nonfinite(out, finite).astype(features.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _pool(x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, plan: _Plan) -> jax.Array:
    """(K, out_h, out_w, C) pooled values of finite boxes, in x's dtype (the compute dtype)."""
    return _forward(x, boxes, batch_indices, plan)[0]


def _forward(x, boxes, batch_indices, plan: _Plan):
    """(out, residuals for the feature gradient)."""
    spec, block_sizes, target = plan.spec, plan.block_sizes, plan.target
    n = x.shape[0]
    ranges = _image_ranges(batch_indices, n_images=n)
    if spec.mode == "avg":
        geo = _avg_geometry(
            boxes,
            batch_indices,
            features_shape=x.shape,
            spec=spec,
            tile_rows=block_sizes.tile_rows,
            tile_cols=block_sizes.tile_cols,
        )
        out = _avg_forward(x, batch_indices, geo, output_size=spec.output_size, block_sizes=block_sizes, target=target)
        return out, (ranges, geo)
    geo = _max_geometry(boxes, batch_indices, n_images=n, spec=spec)
    out, arg, code = _max_forward(
        x,
        geo,
        output_size=spec.output_size,
        corner=spec.mode == "corner_max",
        block_sizes=block_sizes,
        target=target,
    )
    return out, (ranges, geo, arg, code)


def _pool_fwd(x, boxes, batch_indices, plan: _Plan):
    out, residuals = _forward(x.value, boxes.value, batch_indices.value, plan)
    # The box gradient re-runs the XLA path; it needs the inputs, and is skipped (None)
    # when the boxes are not differentiated (e.g. detached proposals).
    xla_inputs = (x.value, boxes.value, batch_indices.value) if boxes.perturbed else None
    return out, (residuals, xla_inputs, x.value.shape)


def _pool_bwd(plan: _Plan, saved, g):
    residuals, xla_inputs, x_shape = saved
    if isinstance(g, SymbolicZero):
        return jnp.zeros(x_shape, g.aval.dtype), None, None
    kwargs = {"features_shape": x_shape, "block_sizes": plan.block_sizes, "target": plan.target}
    if plan.spec.mode == "avg":
        ranges, geo = residuals
        dx = _avg_backward(g, ranges, geo, **kwargs)
    else:
        ranges, geo, arg, code = residuals
        dx = _max_backward(g, arg, code, ranges, geo, **kwargs)
    if xla_inputs is None:
        return dx, None, None
    x, boxes, batch_indices = xla_inputs
    return dx, _box_gradient(x, boxes, batch_indices, g, spec=plan.spec), None


_pool.defvjp(_pool_fwd, _pool_bwd, symbolic_zeros=True)
